"""Benchmark 6 helper: SIGKILLs one service instance under load and watches what follows.

    python failure_watch.py REGISTRY.sqlite PID ADDRESS VARS_URL WATCH_SECONDS

Kills PID, then every 20 ms reads (a) whether ADDRESS is still in the registry's nodes table
and (b) the router's `step.uppercase-errors` counter (each failed attempt at the dead
instance adds one). Prints "reaped_after_s last_failed_attempt_after_s failed_attempts".
"""
import json
import os
import signal
import sqlite3
import sys
import time
import urllib.request

registry, pid, address, vars_url, watch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])


def errors():
    with urllib.request.urlopen(vars_url, timeout=2) as answer:
        return json.loads(answer.read()).get("step.uppercase-errors", 0)


before = errors()
killed = time.monotonic()
os.kill(pid, signal.SIGKILL)
reaped_after = None
last_error_after = 0.0
last = before
db = sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=5)
while time.monotonic() - killed < watch:
    now = time.monotonic() - killed
    if reaped_after is None:
        try:
            if db.execute("SELECT COUNT(*) FROM nodes WHERE address = ?", (address,)).fetchone()[0] == 0:
                reaped_after = now
        except sqlite3.OperationalError:
            pass  # the writer holds a lock for a moment; read again next tick
    current = errors()
    if current != last:
        last, last_error_after = current, now
    time.sleep(0.02)
print(f"{reaped_after if reaped_after is not None else -1:.2f} {last_error_after:.2f} {last - before}")
