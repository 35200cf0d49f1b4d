"""A Skynet service in Python that reads the W3C trace context of each call with
OpenTelemetry's own propagator (opentelemetry-api from PyPI) and writes what it saw.

usage: trace_service.py OUTFILE   (prints "listening PORT" once it listens on 127.0.0.1)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

OUT = open(sys.argv[1], "a", buffering=1)


class Service(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, {"status": "ok"})

    def do_POST(self):
        envelope = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        carrier = {name.lower(): value for name, value in self.headers.items()}
        context = TraceContextTextMapPropagator().extract(carrier=carrier)
        span = trace.get_current_span(context).get_span_context()
        OUT.write(json.dumps({
            "traceparent": carrier.get("traceparent"),
            "tracestate": carrier.get("tracestate"),
            "valid": span.is_valid,
            "traceId": format(span.trace_id, "032x"),
            "parentId": format(span.span_id, "016x"),
            "sampled": span.trace_flags.sampled,
            "state": dict(span.trace_state.items()),
            "envelopeTrace": envelope.get("trace"),
        }) + "\n")
        self.answer(200, {"payload": envelope.get("payload")})

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
