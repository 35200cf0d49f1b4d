import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Issue 32: a stop, a restart or an edit of `from:` is not a failure. Every initiator of the
/// real `sky run` is stopped in the middle of its stream, with inputs in hand inside a slow
/// step: HTTP requests, dropped files, CSV rows and STOMP messages (RabbitMQ, stomp.py). Within
/// the drain limit what is in hand finishes; past it, it is left as a crash would leave it.
/// Either way nothing is rejected, parked or logged as failed, and after the restart every
/// input is answered exactly once.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct DrainTests {
    /// Lines a stop must never log: each would be a false failure.
    static let falseFailures = ["step failed", "file failed", "CSV file failed", "message failed", "async step failed", "initiator failed", "CancellationError"]

    /// The routes: files, CSV rows and STOMP messages through `step` (the `slow` service, which
    /// sleeps the input's `sleepMs`; or a quick one for the second run), and `wait` for HTTP.
    func writeRoutes(_ scratch: Scratch, queue: String, step: String, concurrency: Int = 4) throws {
        try scratch.writeRoute("files.yaml", """
            name: files
            timeout: 30s
            from:
              - files: { dir: drop/files, pattern: "*.json", concurrency: \(concurrency) }
            steps:
              - service: \(step)
            """)
        try scratch.writeRoute("rows.yaml", """
            name: rows
            timeout: 30s
            from:
              - csv: { dir: drop/rows, concurrency: \(concurrency) }
            steps:
              - service: \(step)
            """)
        try scratch.writeRoute("queue.yaml", """
            name: queue
            timeout: 30s
            from:
              - stomp: { destination: \(queue), deadLetter: \(queue).dead, prefetch: 2 }
            steps:
              - service: \(step == "slow" ? "slow" : "echo")
              - service: wordcount
                merge: true
            """)
        try scratch.writeRoute("wait.yaml", """
            name: wait
            timeout: 30s
            steps:
              - service: \(step)
            """)
    }

    /// Drops `count` JSON files and one CSV file of `rows` rows, each input sleeping `sleepMs`
    /// in the slow step.
    func dropInputs(_ scratch: Scratch, files count: Int, rows: Int, sleepMs: Int) throws {
        for folder in ["drop/files", "drop/rows"] {
            try FileManager.default.createDirectory(atPath: scratch.path + "/" + folder, withIntermediateDirectories: true)
        }
        for index in 0..<count {
            let path = scratch.path + "/drop/files/f-\(index).json"
            try #"{"n":\#(index),"sleepMs":\#(sleepMs)}"#.write(toFile: path + ".tmp", atomically: false, encoding: .utf8)
            guard rename(path + ".tmp", path) == 0 else { throw E2EError("rename failed") }
        }
        var text = "n,sleepMs\n"
        for index in 0..<rows { text += "\(index),\(sleepMs)\n" }
        let path = scratch.path + "/drop/rows/r.csv"
        try text.write(toFile: path + ".tmp", atomically: false, encoding: .utf8)
        guard rename(path + ".tmp", path) == 0 else { throw E2EError("rename failed") }
    }

    func expectNoFalseFailures(_ sky: SkyProcess, _ what: String) {
        let logged = sky.stderr.split(separator: "\n").filter { line in Self.falseFailures.contains { line.contains($0) } }
        #expect(logged.isEmpty, "\(what) logged false failures:\n\(logged.prefix(5).joined(separator: "\n"))")
    }

    func startSky(_ scratch: Scratch, _ extra: [String] = []) async throws -> (SkyProcess, String) {
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry] + extra, directory: scratch.path)
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })
        return (sky, base)
    }

    func vars(_ base: String) async -> JSONValue {
        (try? await HTTP.get("\(base)/debug/vars").json) ?? .null
    }

    func names(_ folder: String) -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") })
    }

    /// Left for the next start, never parked or rejected.
    func expectNothingParkedOrRejected(_ scratch: Scratch) {
        #expect(self.names(scratch.path + "/drop/files/.failed").isEmpty)
        let rejects = (try? String(contentsOfFile: scratch.path + "/drop/rows/.out/r.csv.rejects.csv", encoding: .utf8)) ?? ""
        #expect(rejects == "line,error,row\n" || rejects.isEmpty, "\(rejects.prefix(2000))")
    }

    /// Starts `sky run` again on the same folder and registry, checks
    /// ``expectEverythingAnsweredOnce(_:queue:files:rows:)``, and stops it.
    func restartAndExpectEverythingAnsweredOnce(_ scratch: Scratch, queue: String, files: Int, rows: Int) async throws {
        let (again, _) = try await self.startSky(scratch)
        defer { again.signal(SIGKILL) }
        try await self.expectEverythingAnsweredOnce(scratch, queue: queue, files: files, rows: rows)
        again.signal(SIGTERM)
        #expect(try await again.waitForExit(timeout: 30) == 0)
    }

    /// After the restart: every file done once with its answer, every row answered once, every
    /// message answered once (no duplicates: the stop acked what it had answered).
    func expectEverythingAnsweredOnce(_ scratch: Scratch, queue: String, files: Int, rows: Int) async throws {
        let root = scratch.path + "/drop"
        let expectedFiles = Set((0..<files).map { "f-\($0).json" })
        #expect(await eventually(within: 60) { self.names(root + "/files/.done") == expectedFiles }, "done: \(self.names(root + "/files/.done").count) of \(files)")
        #expect(self.names(root + "/files/.failed").isEmpty)
        #expect(self.names(root + "/files/.out") == Set(expectedFiles.map { $0 + ".json" }))
        #expect(await eventually(within: 90) { FileManager.default.fileExists(atPath: root + "/rows/.done/r.csv") })
        let rowLedger = try CSVTests().ledger(root + "/rows", "r.csv", lines: 2..<(rows + 2))
        #expect(rowLedger.isExact, "rows: \(rowLedger)")
        #expect(rowLedger.count(in: "rejects") == 0)
        let messages = try await StompTests().expectEveryMessageAnswered(queue, total: 120, scratch: scratch)
        #expect(messages.isExact, "messages: \(messages)")
    }

    @Test func aStopFinishesWhatIsInHandAndAfterTheRestartEverythingIsAnsweredOnce() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-\(UUID().uuidString.prefix(8).lowercased())"
        try self.writeRoutes(scratch, queue: queue, step: "slow")
        let (sky, base) = try await self.startSky(scratch)
        defer { sky.signal(SIGKILL) }
        let publish = try StompTests().python(["publish", queue, queue + ".out", "120", "150"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        try self.dropInputs(scratch, files: 40, rows: 160, sleepMs: 300)
        // Three HTTP requests that are in the slow step when the stop comes.
        let requests = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<3 {
                    group.addTask { try await HTTP.post("\(base)/routes/wait", #"{"n":\#(index),"sleepMs":2500}"#, timeout: 30).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        var atStop = JSONValue.null
        #expect(await eventually(within: 30) {
            atStop = await self.vars(base)
            return (atStop["files.files-done"]?.intValue ?? 0) >= 4 && (atStop["csv.rows-rows"]?.intValue ?? 0) >= 8
                && (atStop["stomp.queue-done"]?.intValue ?? 0) >= 4 && (atStop["route.wait-inflight"]?.intValue ?? 0) == 3
        }, "\(atStop)")
        let stopped = ContinuousClock.now
        sky.signal(SIGTERM)
        // Mid-stream: each source had inputs left when the stop came.
        #expect((atStop["files.files-done"]?.intValue ?? 99) < 36 && (atStop["csv.rows-rows"]?.intValue ?? 999) < 150 && (atStop["stomp.queue-done"]?.intValue ?? 999) < 110)
        #expect(try await requests.value == [200, 200, 200], "the requests in flight were answered")
        #expect(try await sky.waitForExit(timeout: 30) == 0)
        #expect(ContinuousClock.now - stopped < .seconds(20), "drained within the drain limit")
        self.expectNoFalseFailures(sky, "the stop")
        #expect(sky.stderr.contains("drained: every message in hand answered and acked"))
        self.expectNothingParkedOrRejected(scratch)
        try await self.restartAndExpectEverythingAnsweredOnce(scratch, queue: queue, files: 40, rows: 160)
    }

    /// Past the drain limit (`--drain-timeout 1`, inputs that take 4 s, stopped by `sky stop`)
    /// what is in hand is cut short and left as a crash would leave it: files stay in `.processing/`, the CSV file at
    /// its checkpoint, messages unacked. Nothing is parked, rejected or logged as failed, and
    /// a restart (on quick routes) answers every input once.
    @Test func aStopPastTheDrainLimitLeavesInputsAsACrashWouldAndLosesNothing() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-\(UUID().uuidString.prefix(8).lowercased())"
        try self.writeRoutes(scratch, queue: queue, step: "slow")
        let (sky, base) = try await self.startSky(scratch, ["--drain-timeout", "1"])
        defer { sky.signal(SIGKILL) }
        let publish = try StompTests().python(["publish", queue, queue + ".out", "120", "4000"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        try self.dropInputs(scratch, files: 12, rows: 160, sleepMs: 4000)
        let requests = Task {
            try await withThrowingTaskGroup(of: HTTP.Answer?.self) { group in
                for index in 0..<2 {
                    group.addTask { try? await HTTP.post("\(base)/routes/wait", #"{"n":\#(index),"sleepMs":4000}"#, timeout: 30) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        var atStop = JSONValue.null
        #expect(await eventually(within: 30) {
            atStop = await self.vars(base)
            return (atStop["files.files-inflight"]?.intValue ?? 0) == 4 && (atStop["route.rows-inflight"]?.intValue ?? 0) == 4
                && (atStop["stomp.queue-inflight"]?.intValue ?? 0) == 2 && (atStop["route.wait-inflight"]?.intValue ?? 0) == 2
        }, "\(atStop)")
        // A remote `sky stop` this time (the other tests send SIGTERM): the same drain.
        let stopped = ContinuousClock.now
        let stop = try await Command.run([SkyProcess.binary, "stop", "--kind", "router", "--registry", scratch.registry], timeout: 60)
        #expect(stop.status == 0 && stop.output.contains("stopped"), "\(stop.output)")
        #expect(try await sky.waitForExit(timeout: 30) == 0)
        // The command's trip through the registry (a heartbeat), the 1 s drain limit and the
        // rest of the shutdown; the files still in `.processing/` below show the 4 s steps were
        // cut short, not waited for.
        #expect(ContinuousClock.now - stopped < .seconds(8), "exited \(ContinuousClock.now - stopped) after sky stop")
        // Cut short: no answer, or the request's own "cancelled", never a route failure.
        for answer in try await requests.value {
            guard let answer else { continue }
            #expect(answer.status != 200 && answer.json["error"]?["code"] == "cancelled", "\(answer.status) \(answer.text)")
        }
        self.expectNoFalseFailures(sky, "the stop")
        let files = scratch.path + "/drop/files"
        #expect(self.names(files + "/.processing").count == 4, "the 4 files in hand stay in .processing/: \(self.names(files + "/.processing"))")
        #expect(FileManager.default.fileExists(atPath: scratch.path + "/drop/rows/.processing/r.csv"))
        self.expectNothingParkedOrRejected(scratch)
        // The same inputs through quick routes: all of them, once.
        try self.writeRoutes(scratch, queue: queue, step: "echo")
        try await self.restartAndExpectEverythingAnsweredOnce(scratch, queue: queue, files: 12, rows: 160)
    }

    /// An edit of `from:` in the middle of a CSV file and a stream of files: the old initiators
    /// drain (the CSV file pauses at a checkpoint), the new ones start once they have and go
    /// on from there. Every row and file answered once; none rejected or parked.
    @Test func anEditOfFromMidFileDrainsAndTheNewInitiatorGoesOn() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-\(UUID().uuidString.prefix(8).lowercased())"
        try self.writeRoutes(scratch, queue: queue, step: "slow")
        let (sky, base) = try await self.startSky(scratch)
        defer { sky.signal(SIGKILL) }
        try self.dropInputs(scratch, files: 60, rows: 300, sleepMs: 60)
        var atEdit = JSONValue.null
        #expect(await eventually(within: 30) {
            atEdit = await self.vars(base)
            return (atEdit["files.files-done"]?.intValue ?? 0) >= 8 && (atEdit["csv.rows-rows"]?.intValue ?? 0) >= 40
        })
        try self.writeRoutes(scratch, queue: queue, step: "slow", concurrency: 2)
        #expect((atEdit["files.files-done"]?.intValue ?? 99) < 50 && (atEdit["csv.rows-rows"]?.intValue ?? 999) < 260, "the edit came mid-stream: \(atEdit)")
        let root = scratch.path + "/drop"
        #expect(await eventually(within: 60) { FileManager.default.fileExists(atPath: root + "/rows/.done/r.csv") })
        #expect(sky.stderr.contains("initiator stopping: its route no longer declares it"))
        #expect(sky.stderr.contains("resuming at line"), "the new initiator went on from the old one's checkpoint")
        let rows = try CSVTests().ledger(root + "/rows", "r.csv", lines: 2..<302)
        #expect(rows.isExact, "rows: \(rows)")
        let expectedFiles = Set((0..<60).map { "f-\($0).json" })
        #expect(await eventually(within: 30) { self.names(root + "/files/.done") == expectedFiles })
        #expect(self.names(root + "/files/.failed").isEmpty)
        self.expectNoFalseFailures(sky, "the edit")
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit(timeout: 30) == 0)
    }
}
