"""Benchmark 3's peers: the engine's work on each dropped file, done by a plain loop with the
engine's parallelism (`workers` processes): claim by rename into .processing/, read, parse,
upper-case, write the answer to a temporary file, fsync it, rename it into .out/, move the
input to .done/. That is the engine's guarantee (an input reaches .done/ only once its answer
is on disk), kept file by file as a plain program would. With `nosync` the fsync is left
out: the floor, the same renames without durability.

    python files_loop.py DIR WORKERS [nosync]   # prints "files_per_second elapsed_seconds files"

The files are in DIR before the clock starts; the clock covers listing and all the work.
"""
import json
import multiprocessing
import os
import sys
import time


def work(folder, names, durable):
    done = 0
    for name in names:
        claimed = os.path.join(folder, ".processing", name)
        try:
            os.rename(os.path.join(folder, name), claimed)
        except FileNotFoundError:
            continue  # another worker took it
        with open(claimed, "rb") as f:
            doc = json.loads(f.read())
        answer = {k: v.upper() if isinstance(v, str) else v for k, v in doc.items()}
        temporary = os.path.join(folder, ".out", f".{name}.tmp")
        with open(temporary, "w") as f:
            f.write(json.dumps(answer))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(temporary, os.path.join(folder, ".out", name))
        os.rename(claimed, os.path.join(folder, ".done", name))
        done += 1
    return done


if __name__ == "__main__":
    folder, workers = sys.argv[1], int(sys.argv[2])
    durable = sys.argv[3:4] != ["nosync"]
    for sub in (".processing", ".out", ".done"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        start = time.perf_counter()
        names = [n for n in os.listdir(folder) if not n.startswith(".") and n.endswith(".json")]
        count = sum(pool.starmap(work, [(folder, names[i::workers], durable) for i in range(workers)]))
        elapsed = time.perf_counter() - start
    print(f"{count / elapsed:.1f} {elapsed:.2f} {count}")
