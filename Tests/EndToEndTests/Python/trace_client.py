"""A caller that starts a trace with OpenTelemetry (opentelemetry-api from PyPI), sends its
`traceparent`/`tracestate` with a request, and reads the answer's `traceparent` back with the
same propagator. Prints one JSON line.

usage: trace_client.py URL [sampled|unsampled|garbage]
"""
import json
import random
import sys
import urllib.request

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

url, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "sampled")
propagator = TraceContextTextMapPropagator()
caller = SpanContext(
    trace_id=random.getrandbits(128), span_id=random.getrandbits(64), is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED if mode != "unsampled" else TraceFlags.DEFAULT),
    trace_state=TraceState([("skytest", "k1"), ("other", "v2")]),
)
headers = {"Content-Type": "application/json"}
propagator.inject(headers, context=trace.set_span_in_context(NonRecordingSpan(caller)))
if mode == "garbage":
    headers["traceparent"] = "00-not-a-trace-01"
request = urllib.request.Request(url, data=json.dumps({"text": "trace me"}).encode(), headers=headers, method="POST")
with urllib.request.urlopen(request, timeout=10) as response:
    status = response.status
    answer = {name.lower(): value for name, value in response.headers.items()}
back = trace.get_current_span(propagator.extract(carrier=answer)).get_span_context()
print(json.dumps({
    "status": status,
    "sent": {"traceparent": headers.get("traceparent"), "tracestate": headers.get("tracestate"),
             "traceId": format(caller.trace_id, "032x"), "spanId": format(caller.span_id, "016x")},
    "answer": {"traceparent": answer.get("traceparent"), "valid": back.is_valid,
               "traceId": format(back.trace_id, "032x"), "spanId": format(back.span_id, "016x"),
               "sampled": back.trace_flags.sampled, "skynetTraceId": answer.get("skynet-trace-id")},
}))
