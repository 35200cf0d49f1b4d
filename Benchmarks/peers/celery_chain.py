"""Peer for benchmark 2: the same three-step pipeline as a Celery chain over RabbitMQ.

    celery -A celery_chain worker --pool POOL   # the workers (prefork, threads or gevent)
    python celery_chain.py drive N C       # N chains, C at a time; prints "rps p50_ms p99_ms errors"

Tasks retry on failure (autoretry, 3 attempts) as the engine's steps do.
"""
import sys

import drive

from celery import Celery, chain

app = Celery("celery_chain", broker="amqp://guest:guest@127.0.0.1:5672//", backend="rpc://")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_prefetch_multiplier=16, broker_connection_retry_on_startup=True)

RETRY = dict(autoretry_for=(Exception,), retry_kwargs={"max_retries": 3}, retry_backoff=0.02)


@app.task(**RETRY)
def uppercase(doc):
    return {k: v.upper() if isinstance(v, str) else v for k, v in doc.items()}


@app.task(**RETRY)
def reverse(doc):
    return {k: v[::-1] if isinstance(v, str) else v for k, v in doc.items()}


@app.task(**RETRY)
def wordcount(doc):
    return dict(doc, words=len(str(doc.get("text", "")).split()))


def _make():
    # Connect before the clock starts: the first call opens the broker connection and the
    # result consumer.
    call = lambda: chain(uppercase.s({"text": "hello big world"}), reverse.s(), wordcount.s()).apply_async().get(timeout=30)
    call()
    return call


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive.drive(_make, int(sys.argv[2]), int(sys.argv[3]))
