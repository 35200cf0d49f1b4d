"""Benchmark 5 helper: moves N messages through RabbitMQ's STOMP adapter with stomp.py.

    python stomp_bench.py limit N    # a bare producer → queue → consumer pair: the broker's limit
    python stomp_bench.py engine N   # producer → /queue/bench.in → sky route → /queue/bench.out → consumer

Prints "messages_per_second elapsed_seconds received" once every message arrived (or after a
120 s cap, with fewer received: that shortfall is reported, never hidden).
"""
import sys
import threading
import time

import stomp

HOST = ("127.0.0.1", 61613)


class Counter(stomp.ConnectionListener):
    def __init__(self, expected):
        self.expected, self.count, self.done = expected, 0, threading.Event()

    def on_message(self, frame):
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


def connect(listener=None):
    conn = stomp.Connection([HOST], heartbeats=(0, 0))
    if listener:
        conn.set_listener("", listener)
    conn.connect("guest", "guest", wait=True)
    return conn


def run(mode, total):
    send_to, read_from = ("/queue/bench.limit", "/queue/bench.limit") if mode == "limit" else ("/queue/bench.in", "/queue/bench.out")
    counter = Counter(total)
    consumer = connect(counter)
    consumer.subscribe(read_from, id="1", ack="auto", headers={"prefetch-count": "1000"})
    producer = connect()
    body = '{"text":"hello big world"}'
    start = time.perf_counter()
    for index in range(total):
        producer.send(send_to, body, headers={"content-type": "application/json", "n": str(index)})
    counter.done.wait(timeout=120)
    elapsed = time.perf_counter() - start
    print(f"{counter.count / elapsed:.1f} {elapsed:.2f} {counter.count}")
    producer.disconnect()
    consumer.disconnect()


def purge(*queues):
    """Empties leftover messages of an earlier run so they are not counted."""
    counter = Counter(10**9)
    conn = connect(counter)
    for index, queue in enumerate(queues):
        conn.subscribe(queue, id=str(index), ack="auto")
    last = -1
    while last != counter.count:
        last = counter.count
        time.sleep(0.3)
    conn.disconnect()


if __name__ == "__main__":
    if sys.argv[1] == "purge":
        purge("/queue/bench.limit", "/queue/bench.in", "/queue/bench.out")
    else:
        run(sys.argv[1], int(sys.argv[2]))
