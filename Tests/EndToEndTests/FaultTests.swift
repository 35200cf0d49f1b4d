import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Misbehaving services as real processes on real sockets: one that hangs, one that answers
/// garbage, one that is slow on every fifth call. Deadlines and retries hold; every request
/// gets an answer (a result or a clear error) by its deadline; nothing piles up.
@Suite(.timeLimit(.minutes(2)))
struct FaultTests {
    /// A small HTTP server in Python that misbehaves on purpose (`hang`, `garbage`, `slow5`).
    static let badService = #"""
        import http.server, itertools, json, sys, threading, time
        mode = sys.argv[1]
        counter = itertools.count(1)
        lock = threading.Lock()
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *args): pass
            def do_GET(self):
                body = b'{"status":"ready"}'
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            def do_POST(self):
                envelope = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with lock: n = next(counter)
                if mode == "hang":
                    time.sleep(3600)
                if mode == "garbage":
                    body = b"<html>definitely not json"
                else:
                    if mode == "slow5" and n % 5 == 0: time.sleep(2)
                    body = json.dumps({"payload": envelope["payload"]}).encode()
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        print("listening %d" % server.server_address[1], flush=True)
        server.serve_forever()
        """#

    func startBadService(_ mode: String, scratch: Scratch) async throws -> (Process, String) {
        let script = scratch.path + "/bad_service.py"
        try Self.badService.write(toFile: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, mode]
        let outputPath = scratch.path + "/bad-\(mode).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        // Not the test's own stderr: a child left behind must not keep the runner's pipe open.
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port = ""
        let listening = await eventually(within: 10) {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) else { return false }
            port = String(line.dropFirst("listening ".count))
            return true
        }
        try #require(listening, "the \(mode) service did not start")
        let address = "127.0.0.1:\(port)"
        let add = try SkyProcess(["nodes", "add", "--service", mode, "--address", address, "--registry", scratch.registry], name: "add-\(mode)", directory: scratch.path)
        #expect(try await add.waitForExit() == 0)
        return (process, address)
    }

    @Test func hangingGarbageAndSlowServicesGetClearAnswersWithinTheirDeadlines() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("hang.yaml", "name: hang\ntimeout: 500ms\nsteps:\n  - service: hang\n")
        try scratch.writeRoute("garbage.yaml", "name: garbage\ntimeout: 2s\nsteps:\n  - service: garbage\n    retry: { attempts: 2, backoff: 10ms }\n")
        try scratch.writeRoute(
            "slow.yaml",
            "name: slow\ntimeout: 5s\nsteps:\n  - service: slow5\n    timeout: 300ms\n    retry: { attempts: 3, backoff: 10ms, max: 50ms }\n"
        )
        let (hang, _) = try await self.startBadService("hang", scratch: scratch)
        let (garbage, _) = try await self.startBadService("garbage", scratch: scratch)
        let (slow, _) = try await self.startBadService("slow5", scratch: scratch)
        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path
        )
        defer {
            router.signal(SIGKILL)
            // SIGKILL: children inherit the test runner's blocked SIGTERM.
            for process in [hang, garbage, slow] { kill(process.processIdentifier, SIGKILL) }
        }
        let base = try await router.waitForWord(after: "router ready at ")

        // Hanging: a 504 naming the step, at the route's deadline, every time, side by side.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let started = ContinuousClock.now
                    let answer = try await HTTP.post("\(base)/routes/hang", #"{"n":1}"#)
                    #expect(answer.status == 504)
                    #expect(answer.json["error"]?["code"] == "deadline_exceeded")
                    #expect(answer.json["error"]?["service"] == "hang")
                    // Answered by the deadline (500 ms), not after the service's hour; the
                    // bound is loose for a loaded 2-core machine.
                    #expect(ContinuousClock.now - started < .seconds(5))
                }
            }
            try await group.waitForAll()
        }

        // Garbage: a 502 that says the answer was not JSON, after the retries.
        let garbageAnswer = try await HTTP.post("\(base)/routes/garbage", #"{"n":1}"#)
        #expect(garbageAnswer.status == 502)
        let message = garbageAnswer.json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("not JSON"), "message: \(message)")

        // Slow on every fifth call: the step timeout cuts it and a retry succeeds, so every
        // request succeeds.
        for index in 0..<20 {
            let answer = try await HTTP.post("\(base)/routes/slow", #"{"n":\#(index)}"#)
            #expect(answer.status == 200, "request \(index): \(answer.text)")
            #expect(answer.json == ["n": .int(Int64(index))])
        }
        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect((vars["step.slow5-retries"]?.intValue ?? 0) >= 3)
        // Nothing left in flight: the hanging calls were given up, not kept.
        #expect(vars["route.hang-inflight"]?.intValue == 0)
        #expect(vars["step.hang-inflight"]?.intValue == 0)
        #expect(vars["route.slow-processed"]?.intValue == 20)
    }

    /// A router is SIGKILLed while clients send: each in-flight request ends at once with a
    /// connection error (no hang), and a router started again on the same port serves.
    @Test func aKilledRouterLeavesNoRequestHangingAndARestartServes() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("up.yaml", "name: up\ntimeout: 3s\nsteps:\n  - service: slow\n")
        let service = try SkyProcess(["service", "slow", "--registry", scratch.registry], name: "slow", directory: scratch.path)
        _ = try await service.waitForWord(after: "ready at ")
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        let base = try await router.waitForWord(after: "router ready at ")
        defer { service.signal(SIGKILL) }
        #expect(try await HTTP.post("\(base)/routes/up", #"{"sleepMs":"1"}"#).status == 200)

        // Calls that take 800 ms each are in flight when the router dies.
        let outcomes = Locked<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let started = ContinuousClock.now
                    do {
                        let answer = try await HTTP.post("\(base)/routes/up", #"{"sleepMs":"800"}"#)
                        outcomes.withLock { $0.append("status \(answer.status)") }
                    } catch {
                        outcomes.withLock { $0.append("error") }
                    }
                    // Ended by the kill, not by a client timeout (10 s).
                    #expect(ContinuousClock.now - started < .seconds(5))
                }
            }
            // Kill it once all six are inside the router.
            #expect(await eventually { ((try? await HTTP.get("\(base)/debug/vars").json["route.up-inflight"]?.intValue) ?? 0) == 6 })
            router.signal(SIGKILL)
            try await group.waitForAll()
        }
        #expect(outcomes.withLock { $0.count } == 6)

        let port = String(base.split(separator: ":").last ?? "0")
        let again = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:\(port)", "--registry", scratch.registry], name: "router-2", directory: scratch.path
        )
        defer { again.signal(SIGKILL) }
        _ = try await again.waitForWord(after: "router ready at ")
        #expect(try await HTTP.post("\(base)/routes/up", #"{"sleepMs":"1"}"#).status == 200)
    }
}
