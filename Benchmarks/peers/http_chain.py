"""Benchmark 2's engine side under the same driver as the Python peers: POST the document to a
`sky router` route over one keep-alive connection per client process.

    python http_chain.py drive URL N C     # prints "rps p50_ms p99_ms errors"
"""
import http.client
import json
import sys
import urllib.parse

import drive

BODY = json.dumps({"text": "hello big world"})


def _maker(url):
    def make():
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

        def call():
            connection.request("POST", parts.path, body=BODY, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status // 100 != 2:
                raise RuntimeError(f"HTTP {response.status}")

        return call

    return make


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive.drive(_maker(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
