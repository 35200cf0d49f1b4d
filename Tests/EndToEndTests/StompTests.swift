import Foundation
import SkyLib
import SkyTestSupport
import Testing

/// The STOMP initiator through the real `sky run` against the real RabbitMQ that
/// `scripts/services.sh up` starts; the other side is an independent client (Python stomp.py).
@Suite(.timeLimit(.minutes(3)))
struct StompTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var python: String { ProcessInfo.processInfo.environment["SKYNET_TEST_PYTHON"] ?? root + "/.services/venv/bin/python" }

    static let client = """
        import json, sys, threading, time
        import stomp

        mode = sys.argv[1]
        conn = stomp.Connection12([("127.0.0.1", 61613)], vhost="/")
        if mode == "publish":
            destination, reply, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
            conn.connect("guest", "guest", wait=True)
            for i in range(count):
                body = {"no_text": i} if i % 100 == 50 else {"text": "message %d" % i, "sleepMs": "15"}
                conn.send(destination=destination, body=json.dumps(body),
                          headers={"reply-to": reply, "correlation-id": str(i), "persistent": "true", "content-type": "application/json"})
            conn.disconnect()
        else:
            # drain REPLIES DEAD EXPECTED TIMEOUT: collect correlation ids until all are seen or time runs out
            replies, dead, expected, timeout = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
            seen = {"replies": set(), "dead": set(), "copies": 0, "bad": []}
            lock = threading.Lock()
            class Listener(stomp.ConnectionListener):
                def on_message(self, frame):
                    with lock:
                        seen["copies"] += 1
                        if frame.headers.get("destination") == dead:
                            seen["dead"].add(json.loads(frame.body)["headers"]["correlation-id"])
                        else:
                            body = json.loads(frame.body)
                            if body.get("words") != 2 or not body.get("text", "").startswith("message "):
                                seen["bad"].append(frame.body)
                            seen["replies"].add(frame.headers["correlation-id"])
            conn.set_listener("", Listener())
            conn.connect("guest", "guest", wait=True)
            conn.subscribe(destination=replies, id=1, ack="auto")
            conn.subscribe(destination=dead, id=2, ack="auto")
            end = time.time() + timeout
            while time.time() < end:
                with lock:
                    if len(seen["replies"]) + len(seen["dead"]) >= expected:
                        break
                time.sleep(0.1)
            time.sleep(0.5)
            conn.disconnect()
            print(json.dumps({"replies": sorted(seen["replies"], key=int), "dead": sorted(seen["dead"], key=int), "copies": seen["copies"], "bad": seen["bad"][:5]}))
        """

    func python(_ arguments: [String], in scratch: Scratch) throws -> Process {
        let script = scratch.path + "/stomp_client.py"
        if !FileManager.default.fileExists(atPath: script) { try Self.client.write(toFile: script, atomically: true, encoding: .utf8) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [script] + arguments
        return process
    }

    /// Writes the test route (slow → wordcount merge) on a fresh queue; answers the queue.
    func writeQueueRoute(_ scratch: Scratch) throws -> String {
        let queue = "/queue/sky-\(UUID().uuidString.prefix(8).lowercased())"
        try scratch.writeRoute("queue.yaml", """
            name: queue
            from:
              - stomp: { destination: \(queue), deadLetter: \(queue).dead, prefetch: 16 }
            steps:
              - service: slow
              - service: wordcount
                merge: true
            """)
        return queue
    }

    /// Drains the replies and dead letters of `total` messages and checks that each message
    /// was answered, or dead-lettered when it had no text (every hundredth, from 50).
    func expectEveryMessageAnswered(_ queue: String, total: Int, scratch: Scratch) async throws {
        let drain = try self.python(["drain", queue + ".out", queue + ".dead", "\(total)", "90"], in: scratch)
        let outputPath = scratch.path + "/drain.json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        drain.standardOutput = FileHandle(forWritingAtPath: outputPath)
        try drain.run()
        #expect(try await drain.exitStatus() == 0)
        let summary = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: outputPath)))
        let replies = Set(summary["replies"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let dead = Set(summary["dead"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let expectedDead = Set(stride(from: 50, to: total, by: 100).map(String.init))
        let expectedReplies = Set((0..<total).map(String.init)).subtracting(expectedDead)
        #expect(dead == expectedDead)
        #expect(replies == expectedReplies, "missing: \(expectedReplies.subtracting(replies).count)")
        #expect(summary["bad"] == [])
    }

    @Test func aThousandMessagesGetAThousandAnswersThroughABrokerRestart() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = try self.writeQueueRoute(scratch)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })

        let total = 1000
        let publish = try self.python(["publish", queue, queue + ".out", "\(total)"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)

        // Restart the broker while messages are in flight.
        #expect(await eventually(within: 60) { ((try? await HTTP.get("\(base)/debug/vars").json["stomp.queue-done"]?.intValue) ?? 0) >= 150 })
        let restart = Process()
        restart.executableURL = URL(fileURLWithPath: Self.root + "/scripts/services.sh")
        restart.arguments = ["restart-broker"]
        restart.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        try restart.run()
        #expect(try await restart.exitStatus() == 0)
        #expect(await eventually(within: 30) { sky.stderr.contains("connected to the broker again") })

        try await self.expectEveryMessageAnswered(queue, total: total, scratch: scratch)
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    /// The initiator process is SIGKILLed while messages flow and started again: every message
    /// is answered or dead-lettered (at least once; unacked ones come back from the broker).
    @Test func anInitiatorKilledMidStreamLosesNoMessage() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = try self.writeQueueRoute(scratch)
        let first = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        let base = try await first.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { first.stderr.contains("subscribed") })
        let total = 600
        let publish = try self.python(["publish", queue, queue + ".out", "\(total)"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        #expect(await eventually(within: 60) { ((try? await HTTP.get("\(base)/debug/vars").json["stomp.queue-done"]?.intValue) ?? 0) >= 100 })
        first.signal(SIGKILL)
        _ = try await first.waitForExit()

        let second = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { second.signal(SIGKILL) }
        try await self.expectEveryMessageAnswered(queue, total: total, scratch: scratch)
    }
}
