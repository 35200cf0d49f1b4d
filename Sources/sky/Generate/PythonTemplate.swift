import Foundation

/// The Python service scaffold: one standard-library module that speaks the Skynet protocol,
/// registers and heartbeats in the SQLite registry (or MongoDB with pymongo), drains on
/// SIGTERM, and a unittest file.
enum PythonTemplate {
    /// The project's files: the service, its tests and a README.
    static func files(name: String) -> [(String, String)] {
        let module = ServiceName.moduleName(name)
        return [
            ("\(module).py", self.service(name: name)),
            ("test_\(module).py", self.tests(name: name, module: module)),
            ("routes/\(name).yaml", "# POST /routes/\(name) through a router serving this folder (sky router --routes routes)\nname: \(name)\nsteps:\n  - service: \(name)\n    retry: { attempts: 2, backoff: 20ms, max: 200ms }\n"),
            ("README.md", self.readme(name: name, module: module)),
        ]
    }

    /// What to run next, printed after generating.
    static func nextSteps(name: String, folder: String) -> String {
        let module = ServiceName.moduleName(name)
        return """
            Next:
              cd \(folder) && python3 -m unittest -v test_\(module)
              python3 \(module).py --registry sqlite:$HOME/.skynet/registry.sqlite --port 0
              # then put '- service: \(name)' in a route (see routes/\(name).yaml)
            """
    }

    /// The service itself, standard library only (so it runs wherever Python 3.9+ does): the Skynet
    /// protocol over `http.server`, registration and heartbeats in the same SQLite file the sky
    /// processes use (or MongoDB with pymongo), remote commands, TLS from the same variables,
    /// draining on SIGTERM.
    static func service(name: String) -> String {
        #"""
        #!/usr/bin/env python3
        """The NAME service: a Skynet service in Python, standard library only.

        It answers the Skynet protocol (POST /call, GET /health, GET /debug/vars), keeps its node
        record in the registry (SQLite file, or MongoDB when pymongo is installed) with a
        heartbeat, and on SIGTERM/SIGINT drains: marks itself draining, finishes the calls in
        flight, deregisters and exits 0. It also acts on `sky stop|restart|register|unregister`
        sent to it through the registry. Edit handle() below.
        """
        import argparse
        import json
        import os
        import signal
        import socket
        import sqlite3
        import ssl
        import sys
        import threading
        import time
        import uuid
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        NAME = "__NAME__"


        class ServiceError(Exception):
            """Fail a call. retryable=True when another try (maybe elsewhere) may succeed."""

            def __init__(self, message, code="service_error", retryable=False, status=500):
                super().__init__(message)
                self.code, self.retryable, self.status = code, retryable, status


        def handle(document, envelope):
            """The service: takes the document (any JSON value), answers the output document.

            envelope carries id, route, meta, trace (traceId, spanId, parentId, sampled), deadline (ms
            since 1970) and attempt. Raise ServiceError(..., code="bad_request", status=400) for bad
            input. To call another service from here, send child_trace(envelope) as its "trace" so
            the call joins this request's trace.
            """
            if not isinstance(document, dict):
                raise ServiceError("%s expects a JSON object" % NAME, code="bad_request", status=400)
            result = dict(document)
            result["handledBy"] = NAME  # until edited: the input with one field added
            return result


        def uuid7():
            """A time-ordered id (UUIDv7, RFC 9562) like sky's: node ids sort by when they were made."""
            ms = int(time.time() * 1000)
            rand = int.from_bytes(os.urandom(10), "big")
            value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | (rand & 0x3FFFFFFFFFFFFFFF)
            return str(uuid.UUID(int=value))


        def child_trace(envelope):
            """The trace context for a call made while handling envelope: same trace, new span."""
            trace = dict(envelope.get("trace") or {})
            parent = trace.get("spanId")
            trace.update(spanId=uuid.uuid4().hex[:16], traceId=trace.get("traceId") or uuid.uuid4().hex)
            if parent:
                trace["parentId"] = parent
            return trace


        # ---------------------------------------------------------------- registry

        class SQLiteRegistry:
            """The embedded registry: the same SQLite file (WAL) the sky processes of this host use."""

            def __init__(self, path):
                folder = os.path.dirname(path)
                if folder:
                    os.makedirs(folder, exist_ok=True)
                self.db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
                self.lock = threading.Lock()
                with self.lock:
                    self.switch_to_wal()
                    self.db.execute(
                        "CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, service TEXT NOT NULL,"
                        " version TEXT NOT NULL, region TEXT NOT NULL, environment TEXT NOT NULL DEFAULT 'production',"
                        " host TEXT NOT NULL, address TEXT NOT NULL, pid INTEGER NOT NULL,"
                        " startedAt REAL NOT NULL, heartbeatAt REAL NOT NULL, status TEXT NOT NULL, ttl REAL NOT NULL,"
                        " stats TEXT NOT NULL DEFAULT '{}')")
                    self.db.execute(
                        "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,"
                        " nodeID TEXT NOT NULL, service TEXT NOT NULL, message TEXT NOT NULL)")
                    # A file made before nodes had an environment (sky adds it the same way).
                    if "environment" not in [row[1] for row in self.db.execute("PRAGMA table_info(nodes)")]:
                        self.db.execute("ALTER TABLE nodes ADD COLUMN environment TEXT NOT NULL DEFAULT 'production'")

            def switch_to_wal(self):
                # The first opener of a new file holds it exclusively while it switches it to
                # WAL, and SQLite answers the others "database is locked" at once (this pragma
                # does not wait for the busy timeout): processes started together on a new
                # registry would fail. Wait for it, up to 10 s, as sky does.
                deadline = time.monotonic() + 10
                pause = 0.005
                while True:
                    try:
                        self.db.execute("PRAGMA journal_mode=WAL")
                        return
                    except sqlite3.OperationalError as error:
                        if "locked" not in str(error) or time.monotonic() + pause > deadline:
                            raise
                        time.sleep(pause)
                        pause = min(pause * 2, 0.2)

            def register(self, node):
                with self.lock:
                    # A record at our address is a dead process's: a restart is a new node.
                    self.db.execute("DELETE FROM nodes WHERE address = ? AND kind = ? AND id <> ?", (node["address"], node["kind"], node["id"]))
                    self.db.execute(
                        "INSERT OR REPLACE INTO nodes (id, kind, service, version, region, environment, host, address, pid, startedAt,"
                        " heartbeatAt, status, ttl, stats) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (node["id"], node["kind"], node["service"], node["version"], node["region"], node["environment"], node["host"], node["address"],
                         node["pid"], node["startedAt"], node["heartbeatAt"], node["status"], node["ttl"], json.dumps(node["stats"])))
                    self.db.execute("INSERT INTO events (at, kind, nodeID, service, message) VALUES (?,?,?,?,?)",
                                    (time.time(), "registered", node["id"], node["service"], "python service at %s" % node["address"]))

            def heartbeat(self, node):
                with self.lock:
                    cursor = self.db.execute("UPDATE nodes SET heartbeatAt = ?, status = ?, stats = ? WHERE id = ?",
                                             (node["heartbeatAt"], node["status"], json.dumps(node["stats"]), node["id"]))
                    return cursor.rowcount > 0

            def deregister(self, node, reason="stopped gracefully"):
                with self.lock:
                    self.db.execute("DELETE FROM nodes WHERE id = ?", (node["id"],))
                    self.db.execute("INSERT INTO events (at, kind, nodeID, service, message) VALUES (?,?,?,?,?)",
                                    (time.time(), "deregistered", node["id"], node["service"], reason))

            def record(self, kind, node, message):
                with self.lock:
                    self.db.execute("INSERT INTO events (at, kind, nodeID, service, message) VALUES (?,?,?,?,?)",
                                    (time.time(), kind, node["id"], node["service"], message))

            def claim_commands(self, node_id, actions):
                """Claims this node's pending commands (sky stop, sky unregister …): [(id, action, issuedBy)]."""
                marks = ",".join("?" * len(actions))
                query = ("FROM commands WHERE target = ? AND state = 'pending' AND expiresAt > ? AND action IN (%s)" % marks)
                arguments = (node_id, time.time()) + tuple(actions)
                with self.lock:
                    try:
                        # A read first: there is almost never anything, and a read takes no write lock.
                        if not self.db.execute("SELECT EXISTS (SELECT 1 " + query + ")", arguments).fetchone()[0]:
                            return []
                    except sqlite3.OperationalError:  # no commands table: no command was ever sent
                        return []
                    # One write transaction: of several claimers, exactly one gets each command.
                    self.db.execute("BEGIN IMMEDIATE")
                    try:
                        rows = self.db.execute("SELECT id, action, issuedBy " + query, arguments).fetchall()
                        for row in rows:
                            self.db.execute("UPDATE commands SET state = 'acknowledged', actor = ?, updatedAt = ? WHERE id = ?",
                                            (node_id, time.time(), row[0]))
                        self.db.execute("COMMIT")
                    except Exception:
                        self.db.execute("ROLLBACK")
                        raise
                    return rows

            def finish_command(self, command_id, state, result):
                with self.lock:
                    self.db.execute("UPDATE commands SET state = ?, result = ?, updatedAt = ? WHERE id = ? AND state = 'acknowledged'",
                                    (state, result, time.time(), command_id))


        class MongoRegistry:
            """The registry for many hosts; needs `pip install pymongo`."""

            def __init__(self, uri):
                import pymongo  # optional dependency, only for MongoDB registries
                self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
                database = pymongo.uri_parser.parse_uri(uri).get("database") or "skynet"
                self.nodes = self.client[database]["nodes"]
                self.events = self.client[database]["events"]
                self.commands = self.client[database]["commands"]

            def _document(self, node):
                document = {k: v for k, v in node.items() if k != "id"}
                import datetime
                document["expireAt"] = datetime.datetime.fromtimestamp(node["heartbeatAt"] + max(node["ttl"] * 10, 60), datetime.timezone.utc)
                return document

            def register(self, node):
                self.nodes.delete_many({"address": node["address"], "kind": node["kind"], "_id": {"$ne": node["id"]}})
                self.nodes.update_one({"_id": node["id"]}, {"$set": self._document(node)}, upsert=True)

            def heartbeat(self, node):
                result = self.nodes.update_one({"_id": node["id"]}, {"$set": {
                    "heartbeatAt": node["heartbeatAt"], "status": node["status"], "stats": node["stats"],
                    "expireAt": self._document(node)["expireAt"]}})
                return result.matched_count > 0

            def deregister(self, node, reason="stopped gracefully"):
                self.nodes.delete_one({"_id": node["id"]})
                self.record("deregistered", node, reason)

            def record(self, kind, node, message):
                import datetime
                at = time.time()
                self.events.insert_one({"_id": "%016x%s" % (int(at * 1000000), uuid.uuid4().hex[:8]), "at": at,
                                        "atDate": datetime.datetime.fromtimestamp(at, datetime.timezone.utc), "kind": kind,
                                        "nodeID": node["id"], "service": node["service"], "message": message})

            def claim_commands(self, node_id, actions):
                query = {"target": node_id, "state": "pending", "expiresAt": {"$gt": time.time()}, "action": {"$in": list(actions)}}
                if self.commands.find_one(query) is None:
                    return []
                rows = []
                while True:  # find_one_and_update is atomic: of several claimers, exactly one gets each command
                    document = self.commands.find_one_and_update(
                        query, {"$set": {"state": "acknowledged", "actor": node_id, "updatedAt": time.time()}})
                    if document is None:
                        return rows
                    rows.append((document["_id"], document["action"], document.get("issuedBy", "")))

            def finish_command(self, command_id, state, result):
                self.commands.update_one({"_id": command_id, "state": "acknowledged"},
                                         {"$set": {"state": state, "result": result, "updatedAt": time.time()}})


        def open_registry(address):
            address = address or os.environ.get("SKYNET_REGISTRY") or "sqlite:.skynet/registry.sqlite"
            if address.startswith("sqlite:"):
                return SQLiteRegistry(address[len("sqlite:"):])
            if address.startswith("mongodb://") or address.startswith("mongodb+srv://"):
                return MongoRegistry(address)
            raise SystemExit("registry address %r is neither sqlite:PATH nor mongodb://HOST:PORT/DB" % address)


        # ---------------------------------------------------------------- server

        class Service:
            def __init__(self, host="127.0.0.1", port=0, version="1.0.0", region="local", ttl=3.0, heartbeat=1.0, registry=None,
                         environment="production"):
                self.version, self.region, self.ttl, self.interval, self.registry = version, region, ttl, heartbeat, registry
                self.status = "starting"
                self.counters = {"%s-processed" % NAME: 0, "%s-errors" % NAME: 0, "%s-inflight" % NAME: 0}
                self.lock = threading.Lock()
                self.idle = threading.Condition(self.lock)
                self.stopping = threading.Event()
                self.stop_requested = threading.Event()  # set by a `sky stop` or `sky restart` command
                self.restart_requested = False
                self.exit_command = None
                self.parent = os.getppid()  # under `sky daemon`: if it dies, we stop too
                self.server = ThreadingHTTPServer((host, port), self._handler_class())
                self.server.daemon_threads = True
                self.address = self._serve_tls() + "%s:%d" % (host, self.server.server_address[1])
                self.node = {"id": uuid7(), "kind": "service", "service": NAME, "version": version, "region": region, "environment": environment,
                             "host": socket.gethostname(), "address": self.address, "pid": os.getpid(), "startedAt": time.time(),
                             "heartbeatAt": time.time(), "status": "starting", "ttl": ttl, "stats": {}}

            def _serve_tls(self):
                """TLS as sky's own listeners do it: SKYNET_TLS_CERT and SKYNET_TLS_KEY serve HTTPS (TLS 1.2+),
                SKYNET_TLS_CLIENT_CA requires callers' certificates. Answers the address's scheme prefix."""
                cert, key = os.environ.get("SKYNET_TLS_CERT"), os.environ.get("SKYNET_TLS_KEY")
                if not cert or not key:
                    return ""
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(cert, key)
                if os.environ.get("SKYNET_TLS_CLIENT_CA"):
                    context.verify_mode = ssl.CERT_REQUIRED
                    context.load_verify_locations(os.environ["SKYNET_TLS_CLIENT_CA"])
                # The handshake happens in the request's own thread, not in the accepting one.
                self.server.socket = context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
                return "https://"

            def _record(self, status):
                with self.lock:
                    self.node.update(status=status, heartbeatAt=time.time(), stats={
                        "processed": self.counters["%s-processed" % NAME], "errors": self.counters["%s-errors" % NAME],
                        "inflight": self.counters["%s-inflight" % NAME]})
                    return dict(self.node)

            def start(self):
                threading.Thread(target=self.server.serve_forever, daemon=True).start()
                self.status = "ready"
                if self.registry:
                    self.registry.register(self._record("ready"))
                    threading.Thread(target=self._heartbeats, daemon=True).start()

            def _heartbeats(self):
                failing = False
                while not self.stopping.wait(self.interval):
                    try:
                        if not self.registry.heartbeat(self._record(self.status)):
                            self.registry.register(self._record(self.status))  # reaped while away: come back
                        if failing:
                            print("heartbeats reach the registry again", file=sys.stderr)
                        failing = False
                        self._take_commands()
                    except Exception as error:  # keep trying; say so once
                        if not failing:
                            print("heartbeat failed: %s" % error, file=sys.stderr)
                        failing = True

            def _take_commands(self):
                """Acts on `sky register|unregister|stop|restart` sent to this node (see docs/PROTOCOL.md)."""
                if os.environ.get("SKYNET_SUPERVISOR") and os.getppid() != self.parent and not self.stop_requested.is_set():
                    # Our daemon died; its next start runs a fresh copy of us, so this one stops.
                    print("the daemon that supervised this process is gone; stopping", file=sys.stderr)
                    self.stop_requested.set()
                actions = ["register", "unregister"]
                if not os.environ.get("SKYNET_SUPERVISOR"):  # under `sky daemon`, the daemon stops and restarts us
                    actions += ["stop", "restart"]
                for command_id, action, issued_by in self.registry.claim_commands(self.node["id"], actions):
                    self.registry.record("command-acknowledged", self.node, "%s (command %s, %s) acknowledged by %s at %s"
                                         % (action, command_id[:8], issued_by, NAME, self.address))
                    if action in ("stop", "restart"):
                        self.exit_command = (command_id, action, issued_by)
                        self.restart_requested = action == "restart"
                        self.stop_requested.set()
                        continue
                    old, new = ("unregistered", "ready") if action == "register" else ("ready", "unregistered")
                    if self.status == new:
                        state, result = "done", "already %s" % new
                    elif self.status == old:
                        self.status = new
                        self.registry.heartbeat(self._record(new))
                        state, result = "done", "back in rotation (ready)" if new == "ready" else "out of rotation (unregistered); still running"
                    else:
                        state, result = "failed", "the node is %s" % self.status
                    self._finish(command_id, action, state, result)

            def _finish(self, command_id, action, state, result):
                self.registry.finish_command(command_id, state, result)
                self.registry.record("command-" + state, self.node, "%s (command %s): %s" % (action, command_id[:8], result))

            def drain(self, delay=0.6):
                """Stop taking work: announce draining, let routers notice, finish in-flight calls, deregister."""
                self.status = "draining"
                self.stopping.set()
                if self.registry:
                    try:
                        self.registry.heartbeat(self._record("draining"))
                    except Exception:
                        pass
                time.sleep(delay)
                self.server.shutdown()
                with self.idle:
                    self.idle.wait_for(lambda: self.counters["%s-inflight" % NAME] == 0, timeout=30)
                if self.registry:
                    command = self.exit_command
                    reason = "%s by command %s (%s)" % (command[1], command[0][:8], command[2]) if command else "stopped gracefully"
                    self.registry.deregister(self.node, reason)
                    if command:
                        self._finish(command[0], command[1], "done", "drained and deregistered; " + (
                            "the process starts again as a new node" if command[1] == "restart" else "the process exited"))
                self.server.server_close()

            def _handler_class(self):
                service = self

                class Handler(BaseHTTPRequestHandler):
                    protocol_version = "HTTP/1.1"  # keep-alive: routers pool connections

                    def log_message(self, *args):
                        pass

                    def _answer(self, status, document, started=None):
                        body = json.dumps(document, sort_keys=True).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        if started is not None:
                            # Time spent in this process: the router records it as this service's
                            # span in the request's trace (`sky trace`).
                            self.send_header("Server-Timing", "handle;dur=%.3f" % ((time.perf_counter() - started) * 1000))
                        self.end_headers()
                        self.wfile.write(body)

                    def _error(self, status, code, message, retryable=False, started=None):
                        self._answer(status, {"error": {"code": code, "message": message, "retryable": retryable, "service": NAME}}, started)

                    def do_GET(self):
                        if self.path == "/health":
                            self._answer(200 if service.status in ("ready", "unregistered") else 503, {"status": service.status, "service": NAME, "node": service.node["id"]})
                        elif self.path == "/debug/vars":
                            with service.lock:
                                self._answer(200, dict(service.counters, pid=os.getpid()))
                        else:
                            self._error(404, "not_found", "no such endpoint")

                    def do_POST(self):
                        length = int(self.headers.get("Content-Length") or 0)
                        raw = self.rfile.read(length)
                        if self.path != "/call":
                            return self._error(404, "not_found", "no such endpoint")
                        token = os.environ.get("SKYNET_TOKEN")
                        if token and self.headers.get("Authorization") != "Bearer " + token:
                            return self._error(401, "unauthorized", "missing or wrong token")
                        try:
                            envelope = json.loads(raw)
                            if not isinstance(envelope, dict) or not isinstance(envelope.get("route"), str):
                                raise ValueError('request envelope needs a string field "route"')
                        except ValueError as error:
                            return self._error(400, "bad_request", "malformed request: %s" % error)
                        timeout_ms = self.headers.get("Skynet-Timeout-Ms")
                        deadline = envelope.get("deadline")
                        now_ms = time.time() * 1000
                        if (deadline is not None and deadline <= now_ms) or (timeout_ms is not None and int(timeout_ms) <= 0):
                            return self._error(504, "deadline_exceeded", "the deadline passed before the call started", True)
                        with service.lock:
                            service.counters["%s-inflight" % NAME] += 1
                        started = time.perf_counter()
                        trace_id = (envelope.get("trace") or {}).get("traceId", "-")
                        try:
                            output = handle(envelope.get("payload"), envelope)
                            with service.lock:
                                service.counters["%s-processed" % NAME] += 1
                            self._answer(200, {"payload": output}, started)
                        except ServiceError as error:
                            with service.lock:
                                service.counters["%s-errors" % NAME] += 1
                            print("trace %s: %s" % (trace_id, error), file=sys.stderr)
                            self._error(error.status, error.code, str(error), error.retryable, started)
                        except Exception as error:  # a bug in handle(): report it, not retryable
                            with service.lock:
                                service.counters["%s-errors" % NAME] += 1
                            print("trace %s: %s: %s" % (trace_id, type(error).__name__, error), file=sys.stderr)
                            self._error(500, "service_error", "%s: %s" % (type(error).__name__, error), started=started)
                        finally:
                            with service.idle:
                                service.counters["%s-inflight" % NAME] -= 1
                                service.idle.notify_all()

                return Handler


        def main(argv=None):
            parser = argparse.ArgumentParser(description="The %s service." % NAME)
            parser.add_argument("--registry", help="sqlite:PATH or mongodb://HOST:PORT/DB (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite)")
            parser.add_argument("--host", default="127.0.0.1")
            parser.add_argument("--port", type=int, default=0)
            parser.add_argument("--version", default="1.0.0")
            parser.add_argument("--region", default="local")
            parser.add_argument("--environment", default=os.environ.get("SKYNET_ENVIRONMENT", "production"))
            parser.add_argument("--ttl", type=float, default=3.0)
            parser.add_argument("--heartbeat", type=float, default=1.0)
            args = parser.parse_args(argv)
            service = Service(args.host, args.port, args.version, args.region, args.ttl, args.heartbeat, open_registry(args.registry),
                              args.environment)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            # A supervisor may have started us with these blocked; we want them.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            service.start()
            print("service %s %s ready at %s node %s" % (NAME, args.version, service.address, service.node["id"]), flush=True)
            while not stop.wait(0.2) and not service.stop_requested.is_set():  # a timed wait lets the signal handler run
                pass
            service.drain()
            if service.restart_requested:  # `sky restart`: the same command line, as a new node
                os.execv(sys.executable, [sys.executable] + sys.argv)
            return 0


        if __name__ == "__main__":
            sys.exit(main())
        """#.replacingOccurrences(of: "__NAME__", with: name).replacingOccurrences(of: "The NAME service", with: "The \(name) service")
    }

    /// Its tests: the handler, a live `POST /call`, registration, commands, and processes opening a
    /// new registry together.
    static func tests(name: String, module: String) -> String {
        #"""
        import json
        import multiprocessing
        import os
        import tempfile
        import unittest
        import urllib.request

        import __MODULE__ as service_module


        class HandlerTest(unittest.TestCase):
            def test_answers_the_document_with_handled_by(self):
                self.assertEqual(service_module.handle({"text": "hi"}, {}), {"text": "hi", "handledBy": "__NAME__"})

            def test_rejects_a_document_that_is_not_an_object(self):
                with self.assertRaises(service_module.ServiceError):
                    service_module.handle([1, 2], {})

            def test_calls_made_while_handling_join_the_trace(self):
                trace = service_module.child_trace({"trace": {"traceId": "t" * 32, "spanId": "s" * 16, "sampled": True}})
                self.assertEqual((trace["traceId"], trace["parentId"], trace["sampled"]), ("t" * 32, "s" * 16, True))
                self.assertEqual(len(trace["spanId"]), 16)
                self.assertNotEqual(trace["spanId"], "s" * 16)


        def open_together(path, barrier, results):
            barrier.wait()
            try:
                service_module.SQLiteRegistry(path)
                results.put("ok")
            except Exception as error:
                results.put(repr(error))


        class RegistryTest(unittest.TestCase):
            def test_processes_opening_a_new_registry_together_all_open(self):
                """The first opener switches a new file to WAL; the others wait for it, not fail."""
                folder = tempfile.mkdtemp()
                context = multiprocessing.get_context("fork")
                for attempt in range(10):
                    path = os.path.join(folder, "registry-%d.sqlite" % attempt)
                    barrier, results = context.Barrier(8), context.Queue()
                    processes = [context.Process(target=open_together, args=(path, barrier, results)) for _ in range(8)]
                    for process in processes:
                        process.start()
                    outcomes = [results.get(timeout=30) for _ in processes]
                    for process in processes:
                        process.join()
                    self.assertEqual(outcomes, ["ok"] * 8, path)


        class LiveTest(unittest.TestCase):
            """The real server and a real SQLite registry: POST /call as a router would."""

            def setUp(self):
                self.folder = tempfile.mkdtemp()
                self.registry = service_module.SQLiteRegistry(os.path.join(self.folder, "registry.sqlite"))
                self.service = service_module.Service(registry=self.registry, heartbeat=0.1)
                self.service.start()

            def call(self, path, body=None):
                request = urllib.request.Request("http://%s%s" % (self.service.address, path), data=body, method="POST" if body else "GET")
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        if path == "/call":
                            # The time spent here, for the router to put in the request's trace.
                            self.assertRegex(response.headers.get("Server-Timing", ""), r"^handle;dur=[0-9.]+$")
                        return response.status, json.loads(response.read())
                except urllib.error.HTTPError as error:
                    return error.code, json.loads(error.read())

            def test_serves_call_health_and_registers(self):
                envelope = {"id": "r1", "route": "test", "payload": {"n": 1}, "meta": {}, "attempt": 1}
                self.assertEqual(self.call("/call", json.dumps(envelope).encode()), (200, {"payload": {"n": 1, "handledBy": "__NAME__"}}))
                self.assertEqual(self.call("/call", b"{not json")[0], 400)
                self.assertEqual(self.call("/health")[0], 200)
                rows = self.registry.db.execute("SELECT service, status, address FROM nodes").fetchall()
                self.assertEqual(rows, [("__NAME__", "ready", self.service.address)])
                self.service.drain(delay=0)
                self.assertEqual(self.registry.db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0], 0)


        if __name__ == "__main__":
            unittest.main()
        """#.replacingOccurrences(of: "__MODULE__", with: module).replacingOccurrences(of: "__NAME__", with: name)
    }

    /// Its README: how to run, test and route it.
    static func readme(name: String, module: String) -> String {
        """
        # \(name)

        A Skynet service in Python (standard library only; `pip install pymongo` for a MongoDB
        registry). Edit `handle()` in `\(module).py`.

        ```sh
        python3 -m unittest -v test_\(module)
        python3 \(module).py --registry sqlite:PATH/TO/.skynet/registry.sqlite --port 0
        ```

        Flags, as `sky service`: `--registry` (or `SKYNET_REGISTRY`), `--host`, `--port`,
        `--version`, `--region`, `--ttl`, `--heartbeat`; `SKYNET_TOKEN` when the cluster uses one.
        On SIGTERM it marks itself draining, finishes in-flight calls, deregisters and exits 0.
        Put it in a route with `- service: \(name)` (see `routes/\(name).yaml`).

        """
    }
}
