"""Peer for benchmark 2: the same three-step pipeline as nameko RPC services over RabbitMQ.

    nameko run nameko_chain:Uppercase --broker amqp://guest:guest@127.0.0.1:5672//   # one process per
    nameko run nameko_chain:Reverse …  nameko_chain:Wordcount …  nameko_chain:Pipeline …  # service, like ours
    python nameko_chain.py drive N C       # prints "rps p50_ms p99_ms errors"

The `pipeline` service calls uppercase → reverse → wordcount over RPC, as a router would.
"""
import sys

import drive

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


def _make():
    from nameko.standalone.rpc import ClusterRpcProxy

    # Kept open for the life of the client process: connected before the clock starts.
    cluster = ClusterRpcProxy({"AMQP_URI": BROKER}).start()
    return lambda: cluster.pipeline.run({"text": "hello big world"})


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive.drive(_make, int(sys.argv[2]), int(sys.argv[3]))
