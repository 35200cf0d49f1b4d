"""Peer for benchmark 2: the same three-step pipeline as nameko RPC services over RabbitMQ.

    nameko run nameko_chain --broker amqp://guest:guest@127.0.0.1:5672//
    python nameko_chain.py drive N C       # prints "rps p50_ms p99_ms errors"

The `pipeline` service calls uppercase → reverse → wordcount over RPC, as a router would.
"""
import sys
import time

from nameko.rpc import RpcProxy, rpc

BROKER = "amqp://guest:guest@127.0.0.1:5672//"


class Uppercase:
    name = "uppercase"

    @rpc
    def call(self, doc):
        return {k: v.upper() if isinstance(v, str) else v for k, v in doc.items()}


class Reverse:
    name = "reverse"

    @rpc
    def call(self, doc):
        return {k: v[::-1] if isinstance(v, str) else v for k, v in doc.items()}


class Wordcount:
    name = "wordcount"

    @rpc
    def call(self, doc):
        return dict(doc, words=len(str(doc.get("text", "")).split()))


class Pipeline:
    name = "pipeline"
    uppercase = RpcProxy("uppercase")
    reverse = RpcProxy("reverse")
    wordcount = RpcProxy("wordcount")

    @rpc
    def run(self, doc):
        return self.wordcount.call(self.reverse.call(self.uppercase.call(doc)))


def _client(count):
    from nameko.standalone.rpc import ClusterRpcProxy

    latencies, errors = [], 0
    with ClusterRpcProxy({"AMQP_URI": BROKER}) as cluster:
        for _ in range(count):
            start = time.perf_counter()
            try:
                cluster.pipeline.run({"text": "hello big world"})
                latencies.append(time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - counted, reported
                errors += 1
    return latencies, errors


def drive(total, concurrency):
    import multiprocessing

    per = total // concurrency
    start = time.perf_counter()
    with multiprocessing.Pool(concurrency) as pool:
        results = pool.map(_client, [per] * concurrency)
    elapsed = time.perf_counter() - start
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"{len(latencies) / elapsed:.1f} {pick(0.5):.2f}ms {pick(0.99):.2f}ms {errors}")


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive(int(sys.argv[2]), int(sys.argv[3]))
