"""A Skynet service in Python that writes down when each call started and ended, so a test can
see which inputs ran at once and in what order.

usage: ledger_service.py OUTFILE   (prints "listening PORT" once it listens on 127.0.0.1)

Each call's payload names its `key` and `seq`; it sleeps `sleepMs`, then answers the payload.
`fail: "once"` fails the first call of that key and seq (retryable: false), later ones succeed;
`fail: "always"` fails every call. One JSON line per call: key, seq, start, end (monotonic
seconds), ok.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = open(sys.argv[1], "a", buffering=1)
LOCK = threading.Lock()
FAILED = set()


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
        payload = envelope.get("payload") or {}
        key, seq = str(payload.get("key")), str(payload.get("seq"))
        start = time.monotonic()
        time.sleep(float(payload.get("sleepMs", 0)) / 1000)
        fail = payload.get("fail")
        with LOCK:
            failing = fail == "always" or (fail == "once" and (key, seq) not in FAILED)
            if fail == "once":
                FAILED.add((key, seq))
            OUT.write(json.dumps({"key": key, "seq": seq, "start": start, "end": time.monotonic(), "ok": not failing}) + "\n")
        if failing:
            self.answer(500, {"error": {"code": "service_error", "message": "ledger told to fail %s/%s" % (key, seq), "retryable": False}})
        else:
            self.answer(200, {"payload": payload})

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
