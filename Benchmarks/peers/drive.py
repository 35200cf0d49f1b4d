"""The one closed-loop driver of benchmark 2, for the engine and both peers alike:
`concurrency` client processes, each with its own connection made before the clock starts,
each doing a warm-up of `warmup` calls, then all starting together on a barrier and making
`total / concurrency` calls one after another. Every failed call (an exception, a timeout, a
non-2xx answer) is counted. Prints "calls_per_second p50_ms p99_ms errors".

A client is a function `make() -> call`, run once in each process: it connects, and returns
the call to repeat.
"""
import multiprocessing
import time


def _worker(make, warmup, count, barrier, results):
    call = make()
    for _ in range(warmup):
        try:
            call()
        except Exception:  # noqa: BLE001 - warm-up failures are not measured
            pass
    barrier.wait()
    latencies, errors = [], 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            call()
            latencies.append(time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - counted, reported
            errors += 1
    results.put((latencies, errors))


def drive(make, total, concurrency, warmup=20):
    per = total // concurrency
    context = multiprocessing.get_context("fork")  # clients are closures: fork, never pickle
    barrier = context.Barrier(concurrency + 1)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(make, warmup, per, barrier, results)) for _ in range(concurrency)]
    for worker in workers:
        worker.start()
    barrier.wait()  # every client connected and warmed up: the clock starts now
    start = time.perf_counter()
    collected = [results.get() for _ in workers]
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join()
    latencies = sorted(x for lat, _ in collected for x in lat)
    errors = sum(e for _, e in collected)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    print(f"{len(latencies) / elapsed:.1f} {pick(0.5):.2f}ms {pick(0.99):.2f}ms {errors}")
