"""An OTLP/HTTP trace and metrics receiver for the tests: decodes each batch with the official
protobuf definitions (opentelemetry-proto from PyPI) and writes one JSON line per span to
OUTFILE, and one per metric data point to OUTFILE.metrics.

usage: otlp_receiver.py OUTFILE [THROTTLE]   (prints "listening PORT" once it listens on 127.0.0.1)

With THROTTLE = N, the first N batches are answered 429 and 503 in turn, with `Retry-After: 1`,
as a collector shedding load does, and not written; "throttled K" is printed for each.
"""
import threading
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

OUT = open(sys.argv[1], "a", buffering=1)
METRICS = open(sys.argv[1] + ".metrics", "a", buffering=1)
THROTTLE = int(sys.argv[2]) if len(sys.argv) > 2 else 0
throttled = 0
lock = threading.Lock()


def attributes(pairs):
    result = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        result[pair.key] = getattr(pair.value, kind) if kind else None
    return result


def metrics(body):
    """One line per data point, with the export's resource and the metric's kind."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)  # raises on a malformed message: the sender gets a 500
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                for point in data.data_points:
                    line = {
                        "service": resource.get("service.name"),
                        "instance": resource.get("service.instance.id"),
                        "scope": scope_metrics.scope.name,
                        "name": metric.name,
                        "description": metric.description,
                        "unit": metric.unit,
                        "kind": kind,
                        "attributes": attributes(point.attributes),
                        "start": point.start_time_unix_nano,
                        "time": point.time_unix_nano,
                    }
                    if kind == "histogram":
                        line.update({
                            "count": point.count, "sum": point.sum, "buckets": list(point.bucket_counts),
                            "bounds": list(point.explicit_bounds), "min": point.min, "max": point.max,
                            "temporality": data.aggregation_temporality,
                        })
                    else:
                        line["value"] = getattr(point, point.WhichOneof("value"))
                        if kind == "sum":
                            line.update({"monotonic": data.is_monotonic, "temporality": data.aggregation_temporality})
                    METRICS.write(json.dumps(line) + "\n")
    return ExportMetricsServiceResponse().SerializeToString()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/metrics" and self.headers.get("Content-Type") == "application/x-protobuf":
            answer = metrics(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(415 if self.path == "/v1/traces" else 404)
            self.end_headers()
            return
        global throttled
        with lock:
            refuse = throttled < THROTTLE
            if refuse:
                throttled += 1
                count = throttled
        if refuse:
            self.send_response(429 if count % 2 else 503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            print("throttled", count, flush=True)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # raises on a malformed message: the sender gets a 500
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    OUT.write(json.dumps({
                        "service": resource.get("service.name"),
                        "instance": resource.get("service.instance.id"),
                        "host": resource.get("host.name"),
                        "scope": scope_spans.scope.name,
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                        "parentId": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "status": span.status.code,
                        "attributes": attributes(span.attributes),
                    }) + "\n")
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
