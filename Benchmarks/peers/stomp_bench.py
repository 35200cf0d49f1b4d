"""Benchmark 5 helper: moves N messages through RabbitMQ's STOMP adapter with stomp.py.

    python stomp_bench.py limit N    # a bare producer → queue → consumer pair (one way, auto-ack)
    python stomp_bench.py engine N   # producer → /queue/bench.in → sky route → /queue/bench.out → consumer
    python stomp_bench.py relay N    # producer → /queue/bench.relay.in → bare relay → /queue/bench.relay.out → consumer
    python stomp_bench.py relay-serve   # the bare relay: what the engine does to a message, nothing else

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


QUEUES = {
    "limit": ("/queue/bench.limit", "/queue/bench.limit"),
    "engine": ("/queue/bench.in", "/queue/bench.out"),
    "relay": ("/queue/bench.relay.in", "/queue/bench.relay.out"),
}


class Relay(stomp.ConnectionListener):
    """Does per message what the engine's STOMP initiator does: it came with
    `ack: client-individual` under a prefetch of 256; the reply is sent persistent with a
    receipt, and the message is ACKed only once the broker's RECEIPT says it has the reply."""

    def __init__(self):
        self.conn = None
        self.pending = {}

    def on_message(self, frame):
        receipt = "r" + frame.headers["ack"]
        self.pending[receipt] = frame.headers["ack"]
        self.conn.send("/queue/bench.relay.out", frame.body.upper(), headers={
            "content-type": "application/json", "persistent": "true", "receipt": receipt})

    def on_receipt(self, frame):
        ack = self.pending.pop(frame.headers["receipt-id"], None)
        if ack is not None:
            self.conn.ack(ack)


def relay_serve():
    relay = Relay()
    # STOMP 1.2 sends a host header, which RabbitMQ reads as the virtual host: "/".
    conn = stomp.Connection12([HOST], heartbeats=(0, 0), vhost="/")
    relay.conn = conn
    conn.set_listener("", relay)
    conn.connect("guest", "guest", wait=True)
    conn.subscribe("/queue/bench.relay.in", id="1", ack="client-individual", headers={"prefetch-count": "256"})
    print("relay ready", flush=True)
    threading.Event().wait()


def run(mode, total):
    send_to, read_from = QUEUES[mode]
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
        purge("/queue/bench.limit", "/queue/bench.in", "/queue/bench.out", "/queue/bench.relay.in", "/queue/bench.relay.out")
    elif sys.argv[1] == "relay-serve":
        relay_serve()
    else:
        run(sys.argv[1], int(sys.argv[2]))
