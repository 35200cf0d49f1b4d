#!/usr/bin/env python3
"""Writes the partition table from the last run of PartitionTests into docs/PARTITIONS.md and
the README (between the `partitions` markers). Each test writes its row to
.build/partitions/NAME.md; the table is written only when every row is there (a filtered run,
or a machine where namespaces could not be made, leaves the docs as they were)."""
import datetime
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROWS = ROOT / ".build" / "partitions"
EXPECTED = ["1-router-service", "2-service-registry", "3-registry", "4-reaper-lease", "5-reaper-service", "6-broker"]
HEADER = "| Partition | Requests answered | Failed | Slowest | Time to recover | Guarantee | Held |\n|---|---|---|---|---|---|---|\n"
BEGIN, END = "<!-- partitions:begin -->", "<!-- partitions:end -->"


def main() -> int:
    missing = [name for name in EXPECTED if not (ROWS / f"{name}.md").exists()]
    if missing:
        print(f"partitions: rows missing ({', '.join(missing)}); docs/PARTITIONS.md left as it was")
        return 0
    rows = "".join((ROWS / f"{name}.md").read_text() for name in EXPECTED)
    table = HEADER + rows
    stamp = datetime.date.today().isoformat()
    doc = ROOT / "docs" / "PARTITIONS.md"
    text = doc.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(text[:start] + f"\n<!-- written by scripts/partitions.py from the run of {stamp} -->\n" + table + text[end:])
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + table + text[end:])
    held = rows.count("| held |")
    print(f"partitions: {held} of {len(EXPECTED)} guarantees held; table written to docs/PARTITIONS.md and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
