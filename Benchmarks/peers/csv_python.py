"""Benchmark 4's peers, in Python:

    python csv_python.py job IN OUTDIR [ROWS]  # the engine's job: each row → dict → upper-cased →
                                        # one JSON line; every ROWS rows (default 500) the lines
                                        # are fsynced and a checkpoint (tmp, fsync, rename)
                                        # records the position
    python csv_python.py IN OUT         # the floor: csv read and written back, upper-cased, no sync
    python csv_python.py make PATH ROWS

Both print "rows_per_second elapsed_seconds rows peak_rss_kib cpu_microseconds_per_row" (the
process's own user + system CPU over the job, start-up not counted).
"""
import csv
import json
import os
import resource
import sys
import time


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

CHECKPOINT_ROWS = 500  # the engine's CSVInitiator.Configuration.checkpointRows

if sys.argv[1] == "make":
    with open(sys.argv[2], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city", "note"])
        for index in range(int(sys.argv[3])):
            writer.writerow([index, f"name {index}", "london" if index % 2 else "paris", 'a "quoted", field' if index % 10 == 0 else "plain"])
    sys.exit(0)

if sys.argv[1] == "job":
    source_path, out = sys.argv[2], sys.argv[3]
    # The engine checkpoints once 500 rows or more are answered (the rows answered while a
    # checkpoint is written go into the next): the benchmark passes the engine's mean rows per
    # checkpoint in the same round, so both sides sync as often.
    if len(sys.argv) > 4:
        CHECKPOINT_ROWS = max(1, round(float(sys.argv[4])))
    os.makedirs(out, exist_ok=True)
    results_path = os.path.join(out, "results.jsonl")
    checkpoint_path = os.path.join(out, "checkpoint.json")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    rows = 0
    with open(source_path, newline="", encoding="utf-8") as source, open(results_path, "w") as results:
        reader = csv.DictReader(source)
        for row in reader:
            answer = {k: v.upper() for k, v in row.items()}
            results.write(json.dumps({"line": reader.line_num, "answer": answer}) + "\n")
            rows += 1
            if rows % CHECKPOINT_ROWS == 0:
                results.flush()
                os.fsync(results.fileno())
                with open(checkpoint_path + ".tmp", "w") as checkpoint:
                    json.dump({"line": reader.line_num, "resultsBytes": results.tell()}, checkpoint)
                    # Synced as the engine's is: a checkpoint garbled by a crash cannot resume.
                    checkpoint.flush()
                    os.fsync(checkpoint.fileno())
                os.rename(checkpoint_path + ".tmp", checkpoint_path)
        results.flush()
        os.fsync(results.fileno())
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds() - cpu_start) * 1e6 / max(rows, 1)
    print(f"{rows / elapsed:.1f} {elapsed:.2f} {rows} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {cpu:.2f}")
    sys.exit(0)

start, cpu_start = time.perf_counter(), cpu_seconds()
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
cpu = (cpu_seconds() - cpu_start) * 1e6 / max(rows, 1)
print(f"{rows / elapsed:.1f} {elapsed:.2f} {rows} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {cpu:.2f}")
