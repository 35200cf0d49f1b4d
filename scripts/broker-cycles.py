#!/usr/bin/env python3
"""The STOMP broker SIGKILLed in the middle of a stream, again and again, through one `sky run`.

Usage: .services/venv/bin/python scripts/broker-cycles.py [--cycles 50] [--messages 200] [--sky PATH]
(`make broker-cycles` installs what it needs, builds sky and runs it; CYCLES=N to change.)

Each cycle publishes MESSAGES messages (persistent, each confirmed by the broker's RECEIPT),
lets the engine answer a quarter of them, kills RabbitMQ with SIGKILL (`scripts/services.sh
kill-broker`, which starts it again), and then drains the replies and dead letters (client
acks, so a reply is never lost by the drain itself). Every message must be answered or
dead-lettered, at least once; duplicates are counted (delivery is at-least-once), missing
ones are losses. For each lost message it says who lost it, from the engine's debug log: an
answer whose RECEIPT the engine had (the broker confirmed it, then lost it), or a message the
engine never got a RECEIPT for (so it never acked it: the broker should have delivered it
again). Writes .build/broker-cycles/report.json and prints the figures; exits 1 on any loss.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import stomp

ROOT = pathlib.Path(__file__).resolve().parent.parent


def log(text):
    print(text, flush=True)


class Sky:
    """`sky run` on a scratch folder with one STOMP route, its log at debug level."""

    def __init__(self, binary, queue):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="broker-cycles-"))
        (self.folder / "Routes").mkdir()
        (self.folder / "Routes" / "queue.yaml").write_text(
            f"name: queue\nfrom:\n  - stomp: {{ destination: {queue}, deadLetter: {queue}.dead, prefetch: 16 }}\n"
            "steps:\n  - service: slow\n  - service: wordcount\n    merge: true\n"
        )
        self.log_path = self.folder / "sky.log"
        self.process = subprocess.Popen(
            [binary, "run", "--http", "127.0.0.1:0", "--registry", f"sqlite:{self.folder}/r.sqlite", "--log-level", "debug"],
            cwd=self.folder, stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True,
        )
        self.base = None
        for line in self.process.stdout:
            match = re.search(r"HTTP\s+(http://\S+)", line)
            if match:
                self.base = match.group(1)
                break
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        if not self.base:
            raise SystemExit(f"sky run did not start; see {self.log_path}")
        self.wait_for_log("subscribed", 1, 30)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text, count, seconds):
        end = time.time() + seconds
        while time.time() < end:
            if self.log_text().count(text) >= count:
                return True
            time.sleep(0.1)
        return False

    def done(self):
        with urllib.request.urlopen(self.base + "/debug/vars", timeout=5) as answer:
            return json.load(answer).get("stomp.queue-done", 0)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def connect(listener=None):
    conn = stomp.Connection12([("127.0.0.1", 61613)], vhost="/")
    if listener:
        conn.set_listener("", listener)
    conn.connect("guest", "guest", wait=True)
    return conn


def publish(queue, ids):
    """Sends every message with a receipt; returns once the broker confirmed them all."""
    receipts = set()
    lock = threading.Lock()

    class Receipts(stomp.ConnectionListener):
        def on_receipt(self, frame):
            with lock:
                receipts.add(frame.headers["receipt-id"])

    conn = connect(Receipts())
    for index, message_id in enumerate(ids):
        conn.send(destination=queue, body=json.dumps({"text": f"message {index}", "sleepMs": "20"}),
                  headers={"reply-to": queue + ".out", "correlation-id": message_id, "persistent": "true", "receipt": message_id})
    end = time.time() + 120
    while time.time() < end:
        with lock:
            if len(receipts) == len(ids):
                break
        time.sleep(0.05)
    conn.disconnect()
    if len(receipts) != len(ids):
        raise SystemExit(f"the broker confirmed only {len(receipts)} of {len(ids)} messages")


def drain(queue, ids, seconds):
    """Replies and dead letters of `ids` (client acks: a reply is acked once recorded)."""
    seen = {"answers": {}, "dead letters": {}}
    lock = threading.Lock()
    holder = {}

    class Listener(stomp.ConnectionListener):
        def on_message(self, frame):
            place = "dead letters" if frame.headers.get("destination", "").endswith(".dead") else "answers"
            if place == "answers":
                message_id = frame.headers.get("correlation-id")
            else:
                message_id = json.loads(frame.body)["headers"].get("correlation-id")
            with lock:
                seen[place][message_id] = seen[place].get(message_id, 0) + 1
            holder["conn"].ack(frame.headers["ack"])

    conn = connect(Listener())
    holder["conn"] = conn
    conn.subscribe(destination=queue + ".out", id=1, ack="client-individual")
    conn.subscribe(destination=queue + ".dead", id=2, ack="client-individual")
    wanted = set(ids)
    end = time.time() + seconds
    while time.time() < end:
        with lock:
            if wanted <= set(seen["answers"]) | set(seen["dead letters"]):
                break
        time.sleep(0.1)
    time.sleep(0.5)  # copies that are on their way
    conn.disconnect()
    return seen


def queue_depths(queue):
    name = queue.split("/")[-1]
    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged"], capture_output=True, text=True).stdout
    return {line.split()[0]: line.split()[1:] for line in listed.splitlines() if line.split() and line.split()[0].startswith(name)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=int(os.environ.get("CYCLES", "50")))
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--sky", default=os.environ.get("SKY_BIN", str(ROOT / ".build" / "debug" / "sky")))
    options = parser.parse_args()
    queue = f"/queue/cycles-{int(time.time())}"
    sky = Sky(options.sky, queue)
    cycles = []
    try:
        for cycle in range(1, options.cycles + 1):
            ids = [f"{cycle}-{index}" for index in range(options.messages)]
            before = sky.done()
            publish(queue, ids)
            end = time.time() + 60
            while sky.done() - before < options.messages // 4 and time.time() < end:
                time.sleep(0.05)
            done_at_kill = sky.done() - before
            reconnects = sky.log_text().count("connected to the broker again")
            killed = subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "kill-broker", str(ROOT / ".services")], capture_output=True, text=True)
            if killed.returncode != 0:
                raise SystemExit(f"cycle {cycle}: kill-broker failed: {killed.stdout}{killed.stderr}")
            sky.wait_for_log("connected to the broker again", reconnects + 1, 90)
            seen = drain(queue, ids, 90)
            answered, dead = set(seen["answers"]), set(seen["dead letters"])
            missing = sorted(set(ids) - answered - dead, key=lambda m: int(m.split("-")[1]))
            duplicates = sum(count - 1 for place in seen.values() for count in place.values() if count > 1) + len(answered & dead)
            blame = {}
            if missing:
                text = sky.log_text()
                for message_id in missing:
                    confirmed = f"correlation-id={message_id}" in text and re.search(rf"the broker has the answer.*correlation-id={re.escape(message_id)}\b", text)
                    blame[message_id] = ("broker: it confirmed the engine's answer (RECEIPT), which then never arrived" if confirmed
                                         else "no RECEIPT for an answer: the engine never acked it, so the broker should have delivered it again")
            row = {"cycle": cycle, "sent": len(ids), "done_before_kill": done_at_kill, "answered": len(answered), "dead_lettered": len(dead),
                   "missing": missing, "duplicates": duplicates, "blame": blame, "queues_after": queue_depths(queue) if missing else {}}
            cycles.append(row)
            log(f"cycle {cycle}: {len(ids)} sent, {done_at_kill} answered before the kill; answered {len(answered)}, dead-lettered {len(dead)}, "
                f"missing {len(missing)}, duplicates {duplicates}" + (f"; {blame}" if blame else ""))
    finally:
        sky.stop()
    lost = sum(len(row["missing"]) for row in cycles)
    report = {
        "cycles": len(cycles), "messages": sum(row["sent"] for row in cycles), "lost": lost,
        "duplicates": sum(row["duplicates"] for row in cycles), "cycles_with_loss": [row["cycle"] for row in cycles if row["missing"]],
        "rows": cycles,
    }
    out = ROOT / ".build" / "broker-cycles"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    log(f"broker-cycles: {report['cycles']} SIGKILLs of the broker mid-stream, {report['messages']} messages: {lost} lost, "
        f"{report['duplicates']} duplicates (at-least-once); report in {out / 'report.json'}; engine log {sky.log_path}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
