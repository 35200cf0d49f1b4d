"""Benchmark 4's floor: Python's csv module reading and writing the same rows, uppercasing
every field as the engine's one-step route does.

    python csv_python.py IN OUT     # prints "rows_per_second elapsed_seconds rows peak_rss_kib"
    python csv_python.py make PATH ROWS
"""
import csv
import resource
import sys
import time

if sys.argv[1] == "make":
    with open(sys.argv[2], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city", "note"])
        for index in range(int(sys.argv[3])):
            writer.writerow([index, f"name {index}", "london" if index % 2 else "paris", 'a "quoted", field' if index % 10 == 0 else "plain"])
    sys.exit(0)

start = time.perf_counter()
rows = 0
with open(sys.argv[1], newline="") as source, open(sys.argv[2], "w", newline="") as sink:
    reader = csv.reader(source)
    writer = csv.writer(sink)
    header = next(reader)
    writer.writerow(header)
    for row in reader:
        writer.writerow([field.upper() for field in row])
        rows += 1
elapsed = time.perf_counter() - start
print(f"{rows / elapsed:.1f} {elapsed:.2f} {rows} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
