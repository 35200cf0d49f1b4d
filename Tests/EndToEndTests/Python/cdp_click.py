"""Clicks a button in a page in headless Chromium, through the DevTools protocol, as a person would.

Usage: cdp_click.py CHROMIUM URL SELECTOR DONE_JS TIMEOUT
Opens URL, waits until SELECTOR is on the page, clicks it, then waits until the JavaScript
expression DONE_JS is true (or TIMEOUT seconds pass). Prints JSON: {"clicked", "done", "html"}.
"""
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket  # websocket-client, installed with stomp.py in the test venv

chromium, url, selector, done_js, timeout = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
profile = tempfile.mkdtemp(prefix="cdp-")
browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
     "--remote-debugging-port=0", "--user-data-dir=" + profile, url],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
)
port = None
end = time.time() + 30
while time.time() < end and port is None:
    line = browser.stderr.readline()
    if not line:
        break
    found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
    if found:
        port = found.group(1)
if port is None:
    browser.kill()
    sys.exit("Chromium did not open its DevTools port")
# Keep reading its log, so a full pipe never blocks it.
threading.Thread(target=lambda: [None for _ in browser.stderr], daemon=True).start()

page = None
while time.time() < end and page is None:
    targets = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port))
    page = next((t for t in targets if t.get("type") == "page" and t.get("url", "").startswith(url[:20])), None)
    if page is None:
        time.sleep(0.1)
socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10)
sequence = 0


def evaluate(expression):
    global sequence
    sequence += 1
    socket.send(json.dumps({"id": sequence, "method": "Runtime.evaluate",
                            "params": {"expression": expression, "returnByValue": True, "awaitPromise": True}}))
    while True:
        reply = json.loads(socket.recv())
        if reply.get("id") == sequence:
            return reply.get("result", {}).get("result", {}).get("value")


def wait_for(expression):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if evaluate(expression):
            return True
        time.sleep(0.2)
    return False


found = wait_for("document.querySelector(%s) !== null" % json.dumps(selector))
clicked = bool(found and evaluate("document.querySelector(%s).click(); true" % json.dumps(selector)))
done = clicked and wait_for(done_js)
html = evaluate("document.documentElement.outerHTML") or ""
print(json.dumps({"clicked": clicked, "done": done, "html": html}))
socket.close()
browser.kill()
