import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// A cluster across hosts made of network namespaces (``Hosts``): the MongoDB-wire registry
/// on `registry`, a router with its HTTP initiator on `edge`, an `uppercase` instance in
/// region east on `east` and one in region west on `west`, reapers on `watch1` (started
/// first, so active) and `watch2`, and optionally RabbitMQ on `broker`. Every process binds
/// and advertises its own host's address.
final class PartitionCluster: @unchecked Sendable {
    // @unchecked: the processes are only touched through their thread-safe calls.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let route = """
        name: text
        timeout: 5s
        steps:
          - service: uppercase
            timeout: 400ms
            retry: { attempts: 4, backoff: 10ms, max: 50ms }
        """

    let hosts: Hosts
    let scratch: String
    let registry: String
    var processes: [SkyProcess] = []
    var others: [Process] = []
    var router: SkyProcess!
    var watch1: SkyProcess!
    var watch2: SkyProcess!
    var east: SkyProcess!
    var west: SkyProcess!
    var routerURL = ""

    /// Hosts and the registry, nothing else yet.
    init(broker: Bool = false) async throws {
        self.hosts = try Hosts(["registry", "edge", "east", "west", "watch1", "watch2"] + (broker ? ["broker"] : []))
        Self.removeOldScratch()
        self.scratch = NSTemporaryDirectory() + "sky-partition-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: self.scratch + "/Routes", withIntermediateDirectories: true)
        try Self.route.write(toFile: self.scratch + "/Routes/text.yaml", atomically: true, encoding: .utf8)
        self.registry = "mongodb://\(self.hosts.address("registry")):27017/sky_partition"
        let mongo = try self.start(
            "registry",
            [
                Self.root + "/.services/venv/bin/nx-27017", "--db", "memory", "--host", self.hosts.address("registry"), "-p", "27017",
                "--pid-file", self.scratch + "/nx.pid", "--log-file", self.scratch + "/nx.log",
            ],
            log: "registry"
        )
        self.others.append(mongo)
        guard try await self.poll(within: 30, { try await self.run("edge", ["python3", "-c", "import socket; socket.create_connection(('\(self.hosts.address("registry"))', 27017), 1)"]).status == 0 }) else {
            throw E2EError("the MongoDB-wire server on host registry did not listen in 30 s")
        }
    }

    deinit { self.close() }

    /// A run's scratch folder holds its processes' logs, the evidence when a partition test
    /// fails, so it outlives the run; folders over an hour old are removed when the next
    /// cluster starts, so repeated runs do not fill `/tmp` (no test runs for an hour).
    static func removeOldScratch() {
        let temporary = NSTemporaryDirectory()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for name in names where name.hasPrefix("sky-partition-") {
            let path = temporary + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                Date().timeIntervalSince(modified) > 3600
            else { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    func close() {
        for process in self.processes where process.process.isRunning { process.signal(SIGKILL) }
        for process in self.others where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        self.hosts.close()
    }

    /// Starts the two services, the two reapers (watch1 first, and active) and the router.
    /// The west service binds every interface (`0.0.0.0`), as operators often do; it must
    /// still advertise its host's address.
    func startNodes(ttl: String = "3", reaperInterval: String = "0.5") async throws {
        for (host, region) in [("east", "east"), ("west", "west")] {
            let bind = host == "west" ? "0.0.0.0:9000" : "\(self.hosts.address(host)):9000"
            let process = try self.sky(host, ["service", "uppercase", "--http", bind, "--region", region, "--ttl", ttl, "--heartbeat", "0.3"])
            _ = try await process.waitForWord(after: "ready at ")
            if host == "east" { self.east = process } else { self.west = process }
        }
        self.watch1 = try self.sky("watch1", ["reaper", "--interval", reaperInterval, "--admin", "\(self.hosts.address("watch1")):9100", "--log-level", "notice"])
        guard try await self.poll(within: 15, { self.watch1.stderr.contains("reaper active") }) else { throw E2EError("watch1 never became active:\n\(self.watch1.stderr)") }
        self.watch2 = try self.sky("watch2", ["reaper", "--interval", reaperInterval, "--admin", "\(self.hosts.address("watch2")):9100", "--log-level", "notice"])
        guard try await self.poll(within: 15, { self.watch2.stderr.contains("reaper on standby") }) else { throw E2EError("watch2 never stood by:\n\(self.watch2.stderr)") }
        self.router = try self.sky("edge", ["router", "--routes", "Routes", "--http", "\(self.hosts.address("edge")):8080"])
        self.routerURL = "http://" + (try await self.router.waitForWord(after: "router ready at http://"))
    }

    /// `sky ARGUMENTS` on `host`, on this cluster's registry.
    func sky(_ host: String, _ arguments: [String], name: String? = nil) throws -> SkyProcess {
        let process = try SkyProcess(
            arguments + ["--registry", self.registry], name: name ?? "\(host)-\(arguments[0])", directory: self.scratch,
            on: self.hosts, host: host
        )
        self.processes.append(process)
        return process
    }

    /// Starts any program on `host`, its output in `scratch/LOG.log`.
    func start(_ host: String, _ command: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        let full = self.hosts.command(host, command)
        process.executableURL = URL(fileURLWithPath: full[0])
        process.arguments = Array(full.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: self.scratch)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let path = self.scratch + "/\(log).log"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: path)
        process.standardError = FileHandle(forWritingAtPath: path)
        try process.run()
        return process
    }

    /// Runs a command on `host` to its end; answers its status and standard output.
    func run(_ host: String, _ command: [String], timeout: Double = 60, environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let name = "run-\(UUID().uuidString.prefix(8))"
        let process = try self.start(host, command, log: name, environment: environment)
        let status = try await process.exitStatus(timeout: timeout)
        let output = (try? String(contentsOfFile: self.scratch + "/\(name).log", encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: self.scratch + "/\(name).log")
        return (status, output)
    }

    /// The registry's nodes, read with `sky nodes --json` from `host`.
    func nodes(from host: String = "edge") async throws -> [JSONValue] {
        let (status, output) = try await self.run(host, [SkyProcess.binary, "nodes", "--json", "--registry", self.registry], timeout: 30)
        guard status == 0, let line = output.split(separator: "\n").last(where: { $0.hasPrefix("[") }) else {
            throw E2EError("sky nodes failed (\(status)): \(output)")
        }
        return try JSONParser.parse(String(line)).arrayValue ?? []
    }

    /// The id of the node registered at `address`.
    func nodeID(at address: String) async throws -> String? {
        try await self.nodes().first { $0["address"]?.stringValue == address }?["id"]?.stringValue
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass.
    func poll(within seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    // MARK: broker

    static var python: String { ProcessInfo.processInfo.environment["SKYNET_TEST_PYTHON"] ?? Self.root + "/.services/venv/bin/python" }

    /// Starts a RabbitMQ of its own on host `broker` (its own epmd, data and logs in the
    /// scratch folder), STOMP on all the host's addresses, guest allowed beyond loopback (the
    /// host is a private namespace).
    func startBroker() async throws {
        let folder = self.scratch + "/rabbit"
        try FileManager.default.createDirectory(atPath: folder + "/log", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/mnesia", withIntermediateDirectories: true)
        try """
            listeners.tcp.1 = 127.0.0.1:5672
            stomp.listeners.tcp.1 = 0.0.0.0:61613
            loopback_users = none
            """.write(toFile: folder + "/rabbitmq.conf", atomically: true, encoding: .utf8)
        try "[rabbitmq_stomp].".write(toFile: folder + "/enabled_plugins", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: self.scratch)
        _ = try await self.run("broker", ["sh", "-c", "id rabbitmq >/dev/null 2>&1 && chown -R rabbitmq:rabbitmq '\(folder)' || true"])
        let environment = [
            "RABBITMQ_NODENAME": "rabbit@localhost", "RABBITMQ_CONFIG_FILE": folder + "/rabbitmq", "RABBITMQ_ENABLED_PLUGINS_FILE": folder + "/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": folder + "/mnesia", "RABBITMQ_LOG_BASE": folder + "/log", "RABBITMQ_PID_FILE": folder + "/rabbit.pid",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        ]
        // Started, not awaited: the detached broker inherits the descriptor Foundation watches
        // for the starter's exit, so that exit is never seen. Readiness is its port answering.
        self.others.append(try self.start("broker", ["rabbitmq-server", "-detached"], log: "rabbitmq-start", environment: environment))
        let address = self.hosts.address("broker")
        guard try await self.poll(within: 90, { try await self.run("edge", ["python3", "-c", "import socket; socket.create_connection(('\(address)', 61613), 1)"]).status == 0 }) else {
            throw E2EError("RabbitMQ on host broker did not listen in 90 s: \((try? String(contentsOfFile: folder + "/log/rabbit@localhost.log", encoding: .utf8))?.suffix(2000) ?? "")")
        }
        try Self.stompClient.write(toFile: self.stompScript, atomically: true, encoding: .utf8)
    }

    var stompScript: String { self.scratch + "/stomp_client.py" }

    /// `publish COUNT PAUSE`: persistent messages with receipts to /queue/partition, replies to
    /// /queue/partition.out; `drain EXPECTED TIMEOUT`: the correlation ids of the replies and
    /// dead letters, as JSON. Both on the broker's own host.
    static let stompClient = """
        import json, sys, threading, time
        import stomp
        mode = sys.argv[1]
        conn = stomp.Connection12([("127.0.0.1", 61613)], vhost="/")
        if mode == "publish":
            count, pause = int(sys.argv[2]), float(sys.argv[3])
            receipts = set()
            class Receipts(stomp.ConnectionListener):
                def on_receipt(self, frame):
                    receipts.add(frame.headers["receipt-id"])
            conn.set_listener("", Receipts())
            conn.connect("guest", "guest", wait=True)
            for i in range(count):
                conn.send(destination="/queue/partition", body=json.dumps({"text": "message %d" % i}),
                          headers={"reply-to": "/queue/partition.out", "correlation-id": str(i), "persistent": "true",
                                   "content-type": "application/json", "receipt": "p-%d" % i})
                time.sleep(pause)
            end = time.time() + 60
            while len(receipts) < count and time.time() < end:
                time.sleep(0.05)
            conn.disconnect()
            if len(receipts) < count:
                sys.exit("only %d of %d messages confirmed by the broker" % (len(receipts), count))
        else:
            expected, timeout = int(sys.argv[2]), float(sys.argv[3])
            seen = {"replies": set(), "dead": set(), "copies": 0}
            lock = threading.Lock()
            class Listener(stomp.ConnectionListener):
                def on_message(self, frame):
                    with lock:
                        seen["copies"] += 1
                        if frame.headers.get("destination") == "/queue/partition.dead":
                            seen["dead"].add(json.loads(frame.body)["headers"]["correlation-id"])
                        elif json.loads(frame.body).get("text", "").startswith("MESSAGE "):
                            seen["replies"].add(frame.headers["correlation-id"])
            conn.set_listener("", Listener())
            conn.connect("guest", "guest", wait=True)
            conn.subscribe(destination="/queue/partition.out", id=1, ack="auto")
            conn.subscribe(destination="/queue/partition.dead", id=2, ack="auto")
            end = time.time() + timeout
            while time.time() < end:
                with lock:
                    if len(seen["replies"]) + len(seen["dead"]) >= expected:
                        break
                time.sleep(0.1)
            time.sleep(0.5)
            conn.disconnect()
            print(json.dumps({"replies": sorted(seen["replies"], key=int), "dead": sorted(seen["dead"], key=int), "copies": seen["copies"]}))
        """

    // MARK: load

    static let driver = """
        import http.client, json, sys, threading, time
        host, port, seconds, workers, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        start = time.time()
        results, lock = [], threading.Lock()
        def work(n):
            conn, i = None, 0
            while time.time() - start < seconds:
                i += 1
                began, ok, why = time.time(), False, ""
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, port, timeout=10)
                    conn.request("POST", "/routes/text", json.dumps({"text": "hello %d %d" % (n, i)}), {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    body = response.read()
                    ok = response.status == 200 and json.loads(body).get("text") == "HELLO %d %d" % (n, i)
                    if not ok:
                        why = "%d %s" % (response.status, body[:200])
                except Exception as error:
                    why, conn = repr(error), None
                with lock:
                    results.append((began - start, time.time() - began, ok, why))
        threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        failed = [r for r in results if not r[2]]
        json.dump({"answered": len(results) - len(failed), "failed": len(failed), "slowestMs": round(max([r[1] for r in results] or [0]) * 1000),
                   "lastFailureAt": max([r[0] for r in failed] or [-1]), "errors": [r[3] for r in failed][:5]}, open(out, "w"))
        """

    /// What the driver saw.
    struct Load {
        var answered: Int
        var failed: Int
        var slowestMilliseconds: Int
        var errors: [String]
    }

    /// Starts the driver on `edge`: `workers` clients posting to the route without pause for
    /// `seconds`. Answers a function that waits for its end and reads its figures.
    func drive(seconds: Double, workers: Int = 4) throws -> () async throws -> Load {
        let script = self.scratch + "/driver.py", out = self.scratch + "/load-\(UUID().uuidString.prefix(6)).json"
        try Self.driver.write(toFile: script, atomically: true, encoding: .utf8)
        let address = self.routerURL.dropFirst("http://".count)
        let port = String(address.split(separator: ":").last ?? "8080"), host = String(address.split(separator: ":").first ?? "")
        let process = try self.start("edge", ["python3", script, host, port, "\(seconds)", "\(workers)", out], log: "driver")
        return {
            #expect(try await process.exitStatus(timeout: seconds + 60) == 0)
            let json = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: out)))
            return Load(
                answered: Int(json["answered"]?.intValue ?? 0), failed: Int(json["failed"]?.intValue ?? 0),
                slowestMilliseconds: Int(json["slowestMs"]?.intValue ?? 0), errors: json["errors"]?.arrayValue?.compactMap(\.stringValue) ?? []
            )
        }
    }

    // MARK: figures

    /// Writes one row of the partition table to `.build/partitions/NAME.md`; `make test`
    /// gathers the rows into docs/PARTITIONS.md and the README.
    static func report(_ name: String, partition: String, load: Load?, recovery: String, guarantee: String, held: Bool) {
        let folder = Self.root + "/.build/partitions"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let figures = load.map { "\($0.answered) | \($0.failed) | \($0.slowestMilliseconds > 0 ? "\($0.slowestMilliseconds) ms" : "—")" } ?? "— | — | —"
        let row = "| \(partition) | \(figures) | \(recovery) | \(guarantee) | \(held ? "held" : "**NOT HELD**") |\n"
        try? row.write(toFile: folder + "/\(name).md", atomically: true, encoding: .utf8)
    }
}
