"""Benchmark 3's limit: a plain rename-read-write loop over the same dropped files, doing
per file what the engine does minus the engine (claim by rename, read, parse, uppercase,
write the answer, move the input to done).

    python files_loop.py DIR      # prints "files_per_second elapsed_seconds files"
"""
import json
import os
import sys
import time

folder = sys.argv[1]
for sub in (".processing", ".out", ".done"):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
start = time.perf_counter()
count = 0
for name in os.listdir(folder):
    if name.startswith(".") or not name.endswith(".json"):
        continue
    claimed = os.path.join(folder, ".processing", name)
    os.rename(os.path.join(folder, name), claimed)
    with open(claimed, "rb") as f:
        doc = json.loads(f.read())
    answer = {k: v.upper() if isinstance(v, str) else v for k, v in doc.items()}
    with open(os.path.join(folder, ".out", name), "w") as f:
        f.write(json.dumps(answer))
    os.rename(claimed, os.path.join(folder, ".done", name))
    count += 1
elapsed = time.perf_counter() - start
print(f"{count / elapsed:.1f} {elapsed:.2f} {count}")
