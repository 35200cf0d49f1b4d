import Foundation
import RegistryKit
import SkyLib
import SkyTestSupport
import Testing

/// Ordered lanes per key (`order: { key: FIELD }`), with the real `sky run`, real CSV files,
/// RabbitMQ, and a Python service that writes down when each call started and ended: inputs
/// with the same key run one at a time in arrival order, a slow key does not hold up the others,
/// and a failed input holds its lane (`onFailure: hold`) until it is redriven, or lets it go on
/// (`continue`, the default).
@Suite(.timeLimit(.minutes(3)))
struct OrderedLanesTests {
    /// One call the ledger service saw.
    struct Call: Sendable {
        var key: String
        var seq: Int
        var start: Double
        var end: Double
        var ok: Bool
    }

    static func calls(_ path: String) -> [Call] {
        TraceContextTests.lines(path).compactMap { line in
            guard let key = line["key"]?.stringValue, let seq = line["seq"]?.stringValue.flatMap(Int.init), let start = line["start"]?.doubleValue,
                let end = line["end"]?.doubleValue
            else { return nil }
            return Call(key: key, seq: seq, start: start, end: end, ok: line["ok"] == true)
        }
    }

    /// A scratch folder with the ledger service running and added to its registry by hand:
    /// the folder, the ledger's file, the service's process.
    static func ledgerService() async throws -> (Scratch, String, SkyProcess) {
        let scratch = try Scratch(copyingRoutes: false)
        let ledger = scratch.path + "/ledger.jsonl"
        let service = try await TraceContextTests.helper("ledger_service.py", [ledger], in: scratch)
        let add = try await Command.run([SkyProcess.binary, "nodes", "add", "--service", "ledger", "--address", "127.0.0.1:\(service.port)", "--registry", scratch.registry])
        #expect(add.status == 0, "\(add.output)")
        return (scratch, ledger, service.process)
    }

    /// The inputs: keys A, B, C in turn, five each; A's first is slow (1.5 s), the others quick.
    static func inputs(failing: String) -> [(key: String, seq: Int, sleepMs: Int, fail: String)] {
        (0..<15).map { index in
            let key = ["A", "B", "C"][index % 3]
            let seq = index / 3 + 1
            return (key, seq, key == "A" && seq == 1 ? 1500 : 30, key == "A" && seq == 2 ? failing : "")
        }
    }

    /// Each key's calls ran one at a time in input order (each started once the one before had
    /// ended), and the slow A1 held up no other key: every B and C call ended before it did.
    func expectOrderedAndIndependent(_ calls: [Call], source: String) {
        for key in ["A", "B", "C"] {
            let mine = calls.filter { $0.key == key }.sorted { $0.start < $1.start }
            #expect(mine.map(\.seq) == mine.map(\.seq).sorted(), "\(source) key \(key) ran out of order: \(mine.map(\.seq))")
            for (earlier, later) in zip(mine, mine.dropFirst()) {
                #expect(later.start >= earlier.end, "\(source) key \(key): \(later.seq) started before \(earlier.seq) ended")
            }
        }
        guard let slow = calls.first(where: { $0.key == "A" && $0.seq == 1 }) else {
            Issue.record("\(source): A1 never ran")
            return
        }
        let others = calls.filter { $0.key != "A" }
        #expect(others.count == 10, "\(source): \(others.count) calls of B and C")
        #expect(others.allSatisfy { $0.end < slow.end }, "\(source): a B or C call waited for the slow A1")
    }

    @Test func csvRowsRunInOrderPerKeyAndAHeldRowWaitsForItsRedrive() async throws {
        let (scratch, ledger, service) = try await Self.ledgerService()
        defer { service.signal(SIGKILL) }
        try scratch.writeRoute("ledgered.yaml", """
            name: ledgered
            from:
              - csv: { dir: drop/rows, concurrency: 32, order: { key: key }, onFailure: hold }
            steps:
              - service: ledger
            """)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let rows = scratch.path + "/drop/rows"
        try FileManager.default.createDirectory(atPath: rows, withIntermediateDirectories: true)
        let csv = "key,seq,sleepMs,fail\n" + Self.inputs(failing: "once").map { "\($0.key),\($0.seq),\($0.sleepMs),\($0.fail)\n" }.joined()
        try csv.write(toFile: rows + "/.o.csv", atomically: false, encoding: .utf8)
        _ = rename(rows + "/.o.csv", rows + "/o.csv")

        // A2 failed: it holds lane A, so A3 does not start, while B and C run to their end.
        var held: [FailedItem] = []
        #expect(await eventually(within: 20) {
            let listed = try? await Command.run([SkyProcess.binary, "failed", "list", "--json", "--registry", scratch.registry])
            held = ((try? JSONParser.parse(listed?.output ?? ""))?.arrayValue ?? []).compactMap(FailedItem.init(json:))
            return held.count == 1
        })
        let item = try #require(held.first)
        #expect(item.details["line"] == "5" && item.details["orderKey"] == "A" && item.details["hold"] == "true", "\(item.details)")
        #expect(await eventually(within: 10) { Self.calls(ledger).filter { $0.key != "A" }.count == 10 })
        try await Task.sleep(for: .milliseconds(500))  // room for a wrongly started A3 to show; the assertion below does not wait on it
        #expect(!Self.calls(ledger).contains { $0.key == "A" && $0.seq > 2 }, "A3 ran while A2 held the lane")
        #expect(!FileManager.default.fileExists(atPath: rows + "/.done/o.csv"), "the file finished past a held row")
        #expect((try await HTTP.get("\(base)/debug/vars").json["csv.ledgered-held"]?.intValue ?? 0) == 1)

        // Redriven: A2 runs again in its place, then the lane goes on; the file ends whole.
        let redrive = try await Command.run([SkyProcess.binary, "failed", "redrive", item.id, "--wait", "--timeout", "30", "--registry", scratch.registry])
        #expect(redrive.status == 0, "\(redrive.output)")
        #expect(await eventually(within: 30) { FileManager.default.fileExists(atPath: rows + "/.done/o.csv") })
        let results = try String(contentsOfFile: rows + "/.out/o.csv.results.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(results.count == 15)
        #expect(try String(contentsOfFile: rows + "/.out/o.csv.rejects.csv", encoding: .utf8) == "line,error,row\n")
        let calls = Self.calls(ledger)
        let a2 = calls.filter { $0.key == "A" && $0.seq == 2 }
        #expect(a2.map(\.ok) == [false, true])
        self.expectOrderedAndIndependent(calls.filter(\.ok), source: "csv")
        if let again = a2.last, let a3 = calls.first(where: { $0.key == "A" && $0.seq == 3 }) { #expect(a3.start >= again.end) }
    }

    @Test func stompMessagesRunInOrderPerKeyAndAFailedOneLetsItsLaneGoOn() async throws {
        let (scratch, ledger, service) = try await Self.ledgerService()
        defer { service.signal(SIGKILL) }
        let queue = "/queue/sky-lanes-\(UUID().uuidString.prefix(8).lowercased())"
        try scratch.writeRoute("ledgered.yaml", """
            name: ledgered
            from:
              - stomp: { destination: \(queue), deadLetter: \(queue).dead, prefetch: 32, order: { key: account } }
            steps:
              - service: ledger
            """)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })

        let bodies = Self.inputs(failing: "always").map { input in
            JSONWriter.string([
                "key": .string(input.key), "seq": .int(Int64(input.seq)), "sleepMs": .int(Int64(input.sleepMs)), "fail": .string(input.fail),
                "_headers": ["account": .string(input.key)],
            ])
        }
        let stomp = StompTests()
        let send = try stomp.python(["send", queue, queue + ".out"] + bodies, in: scratch)
        try send.run()
        #expect(try await send.exitStatus() == 0)
        // Every message answered but A2 (index 3), which is dead-lettered; its lane went on.
        let summary = try await stomp.drain(queue, expecting: 15, scratch: scratch)
        #expect(summary["dead"] == ["3"], "\(summary)")
        #expect(Set(summary["replies"]?.arrayValue?.compactMap(\.stringValue) ?? []) == Set((0..<15).filter { $0 != 3 }.map(String.init)))
        let calls = Self.calls(ledger)
        #expect(calls.filter { !$0.ok }.map { "\($0.key)\($0.seq)" } == ["A2"])
        self.expectOrderedAndIndependent(calls, source: "stomp")
        // The node writes failed items to the registry every quarter second: poll until it has.
        var items: [FailedItem] = []
        #expect(await eventually(within: 10) {
            let listed = try? await Command.run([SkyProcess.binary, "failed", "list", "--json", "--registry", scratch.registry])
            items = ((listed.flatMap { try? JSONParser.parse($0.output) })?.arrayValue ?? []).compactMap(FailedItem.init(json:))
            return !items.isEmpty
        })
        #expect(items.count == 1 && items.first?.source == .stomp && items.first?.details["hold"] == nil, "\(items)")
    }

    /// Files too: the key a field of each file's JSON, the order the folder handed them out.
    @Test func filesRunInOrderPerKeyOfAJSONField() async throws {
        let (scratch, ledger, service) = try await Self.ledgerService()
        defer { service.signal(SIGKILL) }
        try scratch.writeRoute("ledgered.yaml", """
            name: ledgered
            from:
              - files: { dir: drop/docs, pattern: "*.json", concurrency: 16, order: { key: key } }
            steps:
              - service: ledger
            """)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        let folder = scratch.path + "/drop/docs"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Dropped one after another, each once the folder has taken the one before: that is
        // their arrival order.
        for (index, input) in Self.inputs(failing: "").enumerated() {
            let name = String(format: "f%02d.json", index)
            let body = JSONWriter.string(["key": .string(input.key), "seq": .int(Int64(input.seq)), "sleepMs": .int(Int64(input.sleepMs))])
            try body.write(toFile: folder + "/." + name, atomically: false, encoding: .utf8)
            _ = rename(folder + "/." + name, folder + "/" + name)
            #expect(await eventually(within: 10) { !FileManager.default.fileExists(atPath: folder + "/" + name) })
        }
        #expect(await eventually(within: 30) { ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/.done")) ?? []).count == 15 })
        self.expectOrderedAndIndependent(Self.calls(ledger), source: "files")
    }
}
