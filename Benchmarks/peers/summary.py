"""Medians and spreads for `make bench`.

    python summary.py FILE FIELD [FIELD…]

FILE has one line per run, fields separated by blanks; a field may carry a unit (wrk's
`850.00us`, `1.23ms`, `2.01s`), turned into milliseconds. For each FIELD (0-based) prints
"median min max" (a field that is not a number in some run is left out of that run).
"""
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def number(text):
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * UNITS[unit]
    try:
        return float(text)
    except ValueError:
        return None


rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
out = []
for field in map(int, sys.argv[2:]):
    values = [v for v in (number(row[field]) for row in rows if len(row) > field) if v is not None]
    if not values:
        out.append("n/a n/a n/a")
        continue
    fmt = lambda v: f"{v:.2f}" if v < 100 else f"{v:.0f}"
    out.append(f"{fmt(statistics.median(values))} {fmt(min(values))} {fmt(max(values))}")
print(" ".join(out))
