"""The load both Python peers of benchmark 2 are measured with: `concurrency` client processes
each making `total / concurrency` calls one after another; prints
"calls_per_second p50_ms p99_ms errors"."""
import multiprocessing
import time


def _timed(call, count):
    latencies, errors = [], 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            call()
            latencies.append(time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - counted, reported
            errors += 1
    return latencies, errors


def drive(client, total, concurrency):
    """client(count) -> (latencies, errors), run in `concurrency` processes."""
    per = total // concurrency
    start = time.perf_counter()
    with multiprocessing.Pool(concurrency) as pool:
        results = pool.map(client, [per] * concurrency)
    elapsed = time.perf_counter() - start
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    print(f"{len(latencies) / elapsed:.1f} {pick(0.5):.2f}ms {pick(0.99):.2f}ms {errors}")
