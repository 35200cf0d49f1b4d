import Foundation
import SkyLib
import SkyTestSupport
import Testing
import RegistryKit

/// Every kind of listener under abuse, with raw sockets (Python's `socket`) and curl (issue
/// 16): idle connections and slow senders are closed, HTTP/1.0 is closed after its answer,
/// a malformed or cut-short body is a 400 (not a 413), HEAD works where GET does, thousands of
/// idle sockets do not stop `/health`, and the connection cap holds the process's descriptors.
@Suite(.timeLimit(.minutes(3)))
struct ListenerAbuseTests {
    static let probe = """
        import json, socket, sys, time

        def conn(address):
            host, port = address.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
            s.settimeout(8)
            return s

        def closed_after(s):
            started = time.time()
            try:
                while True:
                    if not s.recv(65536):
                        return round(time.time() - started, 2)
            except (socket.timeout, ConnectionResetError):
                return None

        def status(s):
            data = b""
            while b"\\r\\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else None

        mode, address = sys.argv[1], sys.argv[2]
        out = {}
        if mode == "abuse":
            s = conn(address); s.sendall(b"GET /health HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
            out["http10_status"] = status(s); out["http10_closed_after"] = closed_after(s)
            s = conn(address); s.sendall(b"HEAD /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            out["head_status"] = status(s)
            s = conn(address); s.sendall(b"PUT /health HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
            data = s.recv(4096)
            out["put_health_status"] = int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else None
            out["put_health_allow"] = next((line.split(b": ", 1)[1].decode() for line in data.split(b"\\r\\n") if line.lower().startswith(b"allow:")), None)
            s = conn(address); out["idle_closed_after"] = closed_after(s)
            s = conn(address); s.sendall(b"GET /hea")
            started = time.time()
            try:  # one byte a quarter second: never idle, never done
                while time.time() - started < 8:
                    time.sleep(0.25); s.sendall(b"l")
            except OSError:
                pass
            out["slow_closed_after"] = round(time.time() - started, 2)
            # The same on a connection that has just served a request: its clock starts again
            # at the slow request's first byte (not at the earlier request's).
            s = conn(address); s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            out["reused_first_status"] = status(s)
            time.sleep(1.2); s.sendall(b"GET /hea")
            started = time.time()
            try:
                while time.time() - started < 8:
                    time.sleep(0.25); s.sendall(b"l")
            except OSError:
                pass
            out["reused_slow_closed_after"] = round(time.time() - started, 2)
            if len(sys.argv) > 3:
                path = sys.argv[3]
                s = conn(address); s.sendall(b"POST " + path.encode() + b" HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\nabc\\r\\n0\\r\\n\\r\\n")
                out["bad_chunk_status"] = status(s)
                s = conn(address); s.sendall(b"POST " + path.encode() + b" HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 50\\r\\n\\r\\n{\\"text\\":"); s.shutdown(socket.SHUT_WR)
                out["truncated_status"] = status(s)
        else:  # idle COUNT: open COUNT idle sockets, report how many the server closed within the wait
            count, wait = int(sys.argv[3]), float(sys.argv[4])
            sockets = []
            for _ in range(count):
                host, port = address.rsplit(":", 1)
                s = socket.socket(); s.setblocking(False)
                s.connect_ex((host, int(port)))
                sockets.append(s)
            print(json.dumps({"opened": len(sockets)}), flush=True)
            sys.stdin.readline()  # the test looks at the server while they are open
            deadline = time.time() + wait
            closed = set()
            while time.time() < deadline and len(closed) < count:
                for index, s in enumerate(sockets):
                    if index in closed:
                        continue
                    try:
                        if s.recv(1) == b"":
                            closed.add(index)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed.add(index)
                time.sleep(0.1)
            out["closed_by_server"] = len(closed)
        print(json.dumps(out), flush=True)
        """

    func runProbe(_ arguments: [String], in scratch: Scratch) async throws -> JSONValue {
        let script = scratch.path + "/probe.py"
        try Self.probe.write(toFile: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        #expect(try await process.exitStatus(timeout: 60) == 0)
        let lines = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        return try JSONParser.parse(String(lines.last ?? "{}"))
    }

    func curlStatus(_ url: String) async throws -> String {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        curl.arguments = ["curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", url]
        let pipe = Pipe()
        curl.standardOutput = pipe
        try curl.run()
        _ = try await curl.exitStatus(timeout: 10)
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    /// Idle after 2 s, whole request within 2 s of its first byte (small, for the test).
    static let limits = ["SKYNET_HTTP_IDLE_TIMEOUT": "2", "SKYNET_HTTP_REQUEST_TIMEOUT": "2"]

    /// Idle after 4 s, whole request within 2 s of its first byte: the idle timeout longer, so
    /// that a slow request on a reused connection is cut by the request clock, not as idle.
    static let slowLimits = ["SKYNET_HTTP_IDLE_TIMEOUT": "4", "SKYNET_HTTP_REQUEST_TIMEOUT": "2"]

    @Test func everyListenerClosesIdleSlowAndOneShotConnectionsAndReadsBodiesHonestly() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path, environment: Self.slowLimits)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path, environment: Self.slowLimits)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        let registry = try await scratch.openRegistry()
        let service = try #require(try await registry.nodes(matching: NodeQuery(service: "uppercase")).first?.address)

        // (listener, address, a POST path that reads a body)
        let listeners: [(String, String, String?)] = [
            ("HTTP initiator", String(base.dropFirst("http://".count)), "/routes/text"),
            ("service", service, "/call"),
            ("dashboard", String(page.dropFirst("http://".count).dropLast()), nil),
        ]
        for (name, address, path) in listeners {
            let result = try await self.runProbe(["abuse", address] + (path.map { [$0] } ?? []), in: scratch)
            #expect(result["http10_status"] == 200 && (result["http10_closed_after"]?.doubleValue ?? 99) < 1, "\(name): HTTP/1.0 \(result)")
            #expect(result["head_status"] == 200, "\(name): HEAD \(result)")
            #expect(result["put_health_status"] == 405 && result["put_health_allow"] == "GET, HEAD", "\(name): PUT /health \(result)")
            let idle = result["idle_closed_after"]?.doubleValue ?? 99
            #expect(idle >= 3.5 && idle < 6, "\(name): idle connection closed after \(idle) s (timeout 4 s)")
            let slow = result["slow_closed_after"]?.doubleValue ?? 99
            #expect(slow >= 1.5 && slow < 4, "\(name): a request trickling in was cut after \(slow) s (timeout 2 s)")
            let reused = result["reused_slow_closed_after"]?.doubleValue ?? 99
            // The request clock cuts it 2 s after its first byte (3.2 s after the first request);
            // a clock left running from the first request would cut it at 0.8 s, the idle
            // timeout at 2.8 s.
            #expect(result["reused_first_status"] == 200 && reused >= 1.5 && reused < 2.6, "\(name): on a reused connection a request trickling in was cut after \(reused) s (timeout 2 s)")
            if path != nil {
                #expect(result["bad_chunk_status"] == 400, "\(name): malformed chunked body \(result)")
                #expect(result["truncated_status"] == 400, "\(name): body shorter than its Content-Length \(result)")
            }
        }
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    /// Thousands of idle sockets do not stop `/health` (curl); with a small cap the process
    /// holds no more connections than the cap, and the idle ones are closed.
    @Test func idleSocketsNeitherStopHealthNorPassTheCap() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path, environment: Self.limits)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let address = String(base.dropFirst("http://".count))
        try await self.holdIdle(3000, at: address, scratch: scratch) {
            let health = try await self.curlStatus("\(base)/health")
            #expect(health == "200", "/health with 3,000 idle sockets open")
        }

        let capped = try SkyProcess(
            ["run", "--http", "127.0.0.1:0", "--registry", scratch.registry + "-capped", "--routes", "Routes"],
            name: "capped", directory: scratch.path, environment: Self.limits.merging(["SKYNET_HTTP_MAX_CONNECTIONS": "50"]) { $1 }
        )
        defer { capped.signal(SIGKILL) }
        let cappedBase = try await capped.waitForWord(after: "HTTP       ")
        let before = Self.openDescriptors(capped.process.processIdentifier)
        let closed = try await self.holdIdle(300, at: String(cappedBase.dropFirst("http://".count)), scratch: scratch) {
            let during = Self.openDescriptors(capped.process.processIdentifier)
            #expect(during - before <= 50 + 10, "\(during - before) more descriptors with 300 sockets and a cap of 50")
        }
        // Closed by the server as each batch goes idle, the waiting ones admitted in turn.
        #expect(closed >= 250, "the server closed \(closed) of 300 idle connections")
        #expect(try await self.curlStatus("\(cappedBase)/health") == "200")
        for process in [sky, capped] { process.signal(SIGTERM) }
        for process in [sky, capped] { #expect(try await process.waitForExit() == 0) }
    }

    /// Opens `count` idle sockets with the probe, runs `check` while they are open, then lets
    /// the probe count for 12 s how many the server closed.
    @discardableResult
    func holdIdle(_ count: Int, at address: String, scratch: Scratch, _ check: () async throws -> Void) async throws -> Int {
        let script = scratch.path + "/probe.py"
        try Self.probe.write(toFile: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "idle", address, "\(count)", "12"]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let reader = output.fileHandleForReading
        var buffered = Data()
        while !buffered.contains(UInt8(ascii: "\n")) {
            let chunk = reader.availableData
            guard !chunk.isEmpty else { break }
            buffered += chunk
        }
        #expect(String(decoding: buffered, as: UTF8.self).contains("\"opened\": \(count)"))
        try await check()
        try input.fileHandleForWriting.write(contentsOf: Data("\n".utf8))
        #expect(try await process.exitStatus(timeout: 60) == 0)
        let rest = String(decoding: buffered + reader.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        return Int(try JSONParser.parse(String(rest.last ?? "{}"))["closed_by_server"]?.intValue ?? -1)
    }
}
