"""The soak (make soak, kept out of CI): mixed load over every initiator for SOAK_MINUTES
(default 10) while a service instance is SIGKILLed and restarted every 30 s. Samples the
memory (VmRSS) and open file descriptors of every sky process, and at the end accounts for
every input by its id: each HTTP request answered 200, answered with an error or unanswered
(timeout, connection error); each file done, failed or missing; each CSV row answered,
rejected or missing; each STOMP message answered, dead-lettered or missing (duplicates, which
at-least-once delivery allows, counted apart). Prints a Markdown report whose every figure and
sentence comes from what was observed, and exits 1 when anything is missing.

    python soak.py SKY_BINARY WORKDIR
"""
import csv, json, os, signal, socket, subprocess, sys, threading, time, urllib.error, urllib.request, uuid

import stomp

SKY, WORK = sys.argv[1], sys.argv[2]
MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
REGISTRY = "sqlite:%s/registry.sqlite" % WORK
HTTP = "127.0.0.1:18700"
QUEUE = "/queue/soak-%s" % uuid.uuid4().hex[:8]  # fresh queues: nothing left from an earlier run
os.makedirs(WORK + "/routes", exist_ok=True)
for folder in ("files", "rows"):
    os.makedirs("%s/drop/%s" % (WORK, folder), exist_ok=True)
STEP = "  - service: uppercase\n    retry: { attempts: 4, backoff: 20ms, max: 200ms }\n"
ROUTES = {
    "text": "name: text\ntimeout: 5s\nsteps:\n" + STEP,
    "files": "name: files\ntimeout: 5s\nfrom:\n  - files: { dir: %s/drop/files, pattern: \"*.json\" }\nsteps:\n%s" % (WORK, STEP),
    "rows": "name: rows\ntimeout: 5s\nfrom:\n  - csv: { dir: %s/drop/rows, header: true }\nsteps:\n%s" % (WORK, STEP),
    "queue": "name: queue\ntimeout: 5s\nfrom:\n  - stomp: { destination: %s.in, replyTo: %s.out, deadLetter: %s.dead }\nsteps:\n%s" % (QUEUE, QUEUE, QUEUE, STEP),
}
for name, text in ROUTES.items():
    with open("%s/routes/%s.yaml" % (WORK, name), "w") as f:
        f.write(text)


def start(*args):
    log = open("%s/%s-%d.log" % (WORK, args[0], time.time_ns()), "w")
    return subprocess.Popen([SKY, *args, "--registry", REGISTRY, "--log-level", "warning"], stdout=log, stderr=log, cwd=WORK)


def service():
    return start("service", "uppercase", "--ttl", "2", "--heartbeat", "0.5")


def wait_for_port(address, seconds=60):
    host, port = address.split(":")
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("soak: %s did not open in %d s" % (address, seconds))


# The engine without uppercase in-process, so every call crosses to the instances we kill.
engine = start("run", "--routes", WORK + "/routes", "--http", HTTP, "--services", "wordcount,audit,echo")
instances = [service(), service()]
wait_for_port(HTTP)

stop = threading.Event()
lock = threading.Lock()
http = {"sent": 0, "ok": 0, "error": 0, "unanswered": 0, "errors": {}}
files_dropped, rows_sent, messages_sent = [], {}, []  # names, {file: row count}, correlation ids


def http_load():
    while not stop.is_set():
        request = urllib.request.Request("http://%s/routes/text" % HTTP, data=b'{"text":"soak"}', method="POST")
        outcome = "ok"
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except urllib.error.HTTPError as error:  # an answer, with an error status
            outcome = "error"
            reason = "HTTP %d" % error.code
        except Exception as error:  # no answer: timeout, refused or reset connection
            outcome = "unanswered"
            reason = type(error).__name__
        with lock:
            http["sent"] += 1
            http[outcome] += 1
            if outcome != "ok":
                http["errors"][reason] = http["errors"].get(reason, 0) + 1


def file_load():
    index = 0
    while not stop.is_set():
        name = "f%07d.json" % index
        temporary = "%s/drop/files/.%s.tmp" % (WORK, name)
        with open(temporary, "w") as f:
            json.dump({"text": "file %d" % index}, f)
        os.rename(temporary, "%s/drop/files/%s" % (WORK, name))
        index += 1
        with lock:
            files_dropped.append(name)
        time.sleep(0.02)


def csv_load():
    index = 0
    while not stop.wait(30 if index else 1):
        name = "r%04d.csv" % index
        temporary = "%s/drop/rows/.%s.tmp" % (WORK, name)
        with open(temporary, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text"])
            writer.writerows([n, "row %d" % n] for n in range(5000))
        os.rename(temporary, "%s/drop/rows/%s" % (WORK, name))
        index += 1
        with lock:
            rows_sent[name] = 5000


class Replies(stomp.ConnectionListener):
    """Every reply and dead letter, by correlation id."""

    def __init__(self):
        self.answered, self.dead = {}, {}

    def on_message(self, frame):
        if frame.headers.get("destination") == QUEUE + ".dead":
            key, book = json.loads(frame.body)["headers"].get("correlation-id", "?"), self.dead
        else:
            key, book = frame.headers.get("correlation-id", "?"), self.answered
        with lock:
            book[key] = book.get(key, 0) + 1


replies = Replies()
consumer = stomp.Connection([("127.0.0.1", 61613)], heartbeats=(0, 0))
consumer.set_listener("", replies)
consumer.connect("guest", "guest", wait=True)
consumer.subscribe(QUEUE + ".out", id="1", ack="auto")
consumer.subscribe(QUEUE + ".dead", id="2", ack="auto")


def stomp_load():
    producer = stomp.Connection([("127.0.0.1", 61613)], heartbeats=(0, 0))
    producer.connect("guest", "guest", wait=True)
    index = 0
    while not stop.is_set():
        producer.send(QUEUE + ".in", '{"text":"message"}', headers={"content-type": "application/json", "correlation-id": str(index), "persistent": "true"})
        with lock:
            messages_sent.append(str(index))
        index += 1
        time.sleep(0.01)
    producer.disconnect(receipt=None)


def sample(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None, None


threads = [threading.Thread(target=t, daemon=True) for t in (http_load, http_load, file_load, csv_load, stomp_load)]
for thread in threads:
    thread.start()
samples = []
started = time.time()
next_kill = started + 30
kills = 0
victim = 0
while time.time() - started < MINUTES * 60:
    time.sleep(10)
    samples.append((round(time.time() - started), sample(engine.pid), [sample(p.pid) for p in instances]))
    if time.time() >= next_kill:
        instances[victim].send_signal(signal.SIGKILL)
        instances[victim].wait()
        instances[victim] = service()
        kills += 1
        victim = 1 - victim
        next_kill += 30
stop.set()
for thread in threads:
    thread.join(timeout=40)


def settled(predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(1)
    return predicate()


def listing(folder):
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def file_ledger():
    out, failed = listing(WORK + "/drop/files/.out"), listing(WORK + "/drop/files/.failed")
    done = {name for name in files_dropped if name + ".json" in out}
    parked = {name for name in files_dropped if name in failed}
    return done, parked, [name for name in files_dropped if name not in done and name not in parked]


def row_ledger():
    """Rows of every CSV file by line: answered, rejected, and lines found twice."""
    answered, rejected, twice = 0, 0, 0
    missing = 0
    for name, count in rows_sent.items():
        seen = {}
        try:
            with open("%s/drop/rows/.out/%s.results.jsonl" % (WORK, name)) as f:
                for line in f:
                    number = json.loads(line)["line"]
                    seen[number] = seen.get(number, 0) + 1
                    answered += 1
        except OSError:
            pass
        try:
            with open("%s/drop/rows/.out/%s.rejects.csv" % (WORK, name), newline="") as f:
                for record in list(csv.reader(f))[1:]:
                    number = int(record[0])
                    seen[number] = seen.get(number, 0) + 1
                    rejected += 1
        except OSError:
            pass
        twice += sum(1 for n in seen.values() if n > 1)
        missing += sum(1 for line in range(2, count + 2) if line not in seen)
    return answered, rejected, twice, missing


def message_ledger():
    with lock:
        answered, dead = dict(replies.answered), dict(replies.dead)
    sent = set(messages_sent)
    missing = [m for m in messages_sent if m not in answered and m not in dead]
    duplicates = sum(n - 1 for n in answered.values()) + sum(n - 1 for n in dead.values()) + sum(1 for m in answered if m in dead)
    unexpected = [m for m in list(answered) + list(dead) if m not in sent]
    return len(sent & set(answered)), len(sent & set(dead) - set(answered)), duplicates, missing, unexpected


settled(lambda: not file_ledger()[2])
settled(lambda: row_ledger()[3] == 0)
settled(lambda: not message_ledger()[3])
final = (round(time.time() - started), sample(engine.pid), [sample(p.pid) for p in instances])
engine.send_signal(signal.SIGTERM)
for process in instances:
    process.send_signal(signal.SIGKILL)
engine.wait(timeout=30)
consumer.disconnect()

files_done, files_parked, files_missing = file_ledger()
rows_answered, rows_rejected, rows_twice, rows_missing = row_ledger()
messages_answered, messages_dead, messages_duplicated, messages_missing, messages_unexpected = message_ledger()
rows_total = sum(rows_sent.values())
missing_total = len(files_missing) + rows_missing + len(messages_missing) + len(messages_unexpected)

build = "release" if "/release/" in SKY else "debug" if "/debug/" in SKY else "unknown"
print("Soak: %g minutes, a service instance SIGKILLed and restarted every 30 s (%d kills), %s build." % (MINUTES, kills, build))
print()
print("| Work | Sent | Done | Failed, with their error | Missing |")
print("|---|---|---|---|---|")
print("| HTTP requests | %d | %d answered 200 | %d answered with an error status; %d unanswered (timeout or connection error)%s | — |" % (
    http["sent"], http["ok"], http["error"], http["unanswered"],
    "" if not http["errors"] else ": " + ", ".join("%s × %d" % item for item in sorted(http["errors"].items()))))
print("| Files | %d | %d answered | %d parked in .failed/ | %d |" % (len(files_dropped), len(files_done), len(files_parked), len(files_missing)))
print("| CSV rows | %d | %d answered | %d rejected | %d |" % (rows_total, rows_answered, rows_rejected, rows_missing))
print("| STOMP messages | %d | %d answered | %d dead-lettered | %d |" % (len(messages_sent), messages_answered, messages_dead, len(messages_missing)))
print()
print("| Process | RSS first sample → last (MiB) | Open fds first → last |")
print("|---|---|---|")
first, last = samples[0], final
print("| sky run (router, initiators, reaper) | %s → %s | %s → %s |" % (first[1][0], last[1][0], first[1][1], last[1][1]))
print()
rss = [s[1][0] for s in samples if s[1][0] is not None]
print("RSS of `sky run` every 10 s (MiB): " + ", ".join(str(r) for r in rss))
print()

# The prose, from the figures above.
sentences = []
if missing_total == 0:
    sentences.append("Every input is accounted for: nothing was lost.")
else:
    sentences.append("%d input(s) are missing (files %d, rows %d, messages %d%s)." % (
        missing_total, len(files_missing), rows_missing, len(messages_missing),
        ", and %d answers to messages nobody sent" % len(messages_unexpected) if messages_unexpected else ""))
if http["error"] or http["unanswered"]:
    sentences.append("%d HTTP request(s) got an error status and %d got no answer." % (http["error"], http["unanswered"]))
else:
    sentences.append("Every HTTP request was answered 200.")
if messages_duplicated or rows_twice:
    sentences.append("At-least-once delivery repeated %d STOMP answer(s) and %d CSV row(s)." % (messages_duplicated, rows_twice))
if len(rss) >= 4:
    half = rss[len(rss) // 2:]
    sentences.append("RSS went from %d to %d MiB; over the second half of the run it stayed between %d and %d MiB." % (rss[0], rss[-1], min(half), max(half)))
if first[1][1] is not None and last[1][1] is not None:
    sentences.append("Open descriptors went from %d to %d." % (first[1][1], last[1][1]))
print(" ".join(sentences))
sys.exit(1 if missing_total else 0)
