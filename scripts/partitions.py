#!/usr/bin/env python3
"""Writes the partition table from the last run of PartitionTests into docs/PARTITIONS.md and
the README (between the `partitions` markers), stamped with the commit and the date it was
measured on. Each test writes its row to .build/partitions/NAME.md; the table is written only
when every row is there. A run without every row (a filtered run, or a machine where namespaces
could not be made) leaves the docs as they were, and says which commit and date the table
standing there is from; under CI (`CI` set) that is a failure: CI must measure it."""
import datetime
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROWS = ROOT / ".build" / "partitions"
EXPECTED = ["1-router-service", "2-service-registry", "3-registry", "4-reaper-lease", "5-reaper-service", "6-broker"]
HEADER = "| Partition | Requests answered | Failed | Slowest | Time to recover | Guarantee | Held |\n|---|---|---|---|---|---|---|\n"
BEGIN, END = "<!-- partitions:begin -->", "<!-- partitions:end -->"


def commit() -> str:
    """The commit the tests ran on, `+ changes` when the tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + (" + changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def main() -> int:
    missing = [name for name in EXPECTED if not (ROWS / f"{name}.md").exists()]
    doc = ROOT / "docs" / "PARTITIONS.md"
    if missing:
        standing = re.search(r"Measured on (.*?) \(written by", doc.read_text())
        print(f"partitions: rows missing ({', '.join(missing)}); the table in docs/PARTITIONS.md and README.md is still the one measured on "
              f"{standing.group(1) if standing else 'an unknown run'}, not this run")
        ci = os.environ.get("CI", "")
        if ci and ci not in ("0", "false"):
            print("partitions: under CI every partition test must run and write its row", file=sys.stderr)
            return 1
        return 0
    rows = "".join((ROWS / f"{name}.md").read_text() for name in EXPECTED)
    table = HEADER + rows
    stamp = f"Measured on {commit()}, {datetime.date.today().isoformat()} (written by scripts/partitions.py).\n\n"
    for path in (doc, ROOT / "README.md"):
        text = path.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        path.write_text(text[:start] + "\n" + stamp + table + text[end:])
    held = rows.count("| held |")
    print(f"partitions: {held} of {len(EXPECTED)} guarantees held; table written to docs/PARTITIONS.md and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
