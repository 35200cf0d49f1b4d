import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Subprocess
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
            # Every message with a receipt: the broker has each one (persistent) before we say so.
            destination, reply, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
            sleep_ms = sys.argv[5] if len(sys.argv) > 5 else "50"
            first = int(sys.argv[6]) if len(sys.argv) > 6 else 0
            receipts = set()
            class Receipts(stomp.ConnectionListener):
                def on_receipt(self, frame):
                    receipts.add(frame.headers["receipt-id"])
            conn.set_listener("", Receipts())
            conn.connect("guest", "guest", wait=True)
            for i in range(first, first + count):
                body = {"no_text": i} if i % 100 == 50 else {"text": "message %d" % i, "sleepMs": sleep_ms}
                conn.send(destination=destination, body=json.dumps(body),
                          headers={"reply-to": reply, "correlation-id": str(i), "persistent": "true", "content-type": "application/json", "receipt": "p-%d" % i})
            end = time.time() + 60
            while len(receipts) < count and time.time() < end:
                time.sleep(0.05)
            conn.disconnect()
            if len(receipts) < count:
                sys.exit("only %d of %d messages confirmed by the broker" % (len(receipts), count))
        elif mode == "send":
            # send DESTINATION REPLY BODY...: each body (JSON) with correlation-id its index, confirmed by the broker.
            destination, reply, bodies = sys.argv[2], sys.argv[3], sys.argv[4:]
            receipts = set()
            class Receipts(stomp.ConnectionListener):
                def on_receipt(self, frame):
                    receipts.add(frame.headers["receipt-id"])
            conn.set_listener("", Receipts())
            conn.connect("guest", "guest", wait=True)
            for i, body in enumerate(bodies):
                # A body's "_headers" object, if any, goes as the message's headers instead.
                document = json.loads(body)
                extra = document.pop("_headers", {}) if isinstance(document, dict) else {}
                headers = {"reply-to": reply, "correlation-id": str(i), "persistent": "true", "content-type": "application/json", "receipt": "s-%d" % i}
                headers.update(extra)
                conn.send(destination=destination, body=json.dumps(document), headers=headers)
            end = time.time() + 60
            while len(receipts) < len(bodies) and time.time() < end:
                time.sleep(0.05)
            conn.disconnect()
            if len(receipts) < len(bodies):
                sys.exit("only %d of %d messages confirmed by the broker" % (len(receipts), len(bodies)))
        elif mode == "big":
            # big DESTINATION REPLY BYTES: one message of BYTES bytes, correlation-id "big", confirmed by the broker.
            destination, reply, size = sys.argv[2], sys.argv[3], int(sys.argv[4])
            receipts = []
            class Receipts(stomp.ConnectionListener):
                def on_receipt(self, frame):
                    receipts.append(frame.headers["receipt-id"])
            conn.set_listener("", Receipts())
            conn.connect("guest", "guest", wait=True)
            conn.send(destination=destination, body="x" * size,
                      headers={"reply-to": reply, "correlation-id": "big", "persistent": "true", "content-type": "application/json", "receipt": "big"})
            end = time.time() + 60
            while not receipts and time.time() < end:
                time.sleep(0.05)
            conn.disconnect()
            if not receipts:
                sys.exit("the broker did not confirm the big message")
        else:
            # drain REPLIES DEAD EXPECTED TIMEOUT: collect correlation ids until all are seen or time runs out
            replies, dead, expected, timeout = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
            seen = {"replies": set(), "dead": set(), "copies": 0, "bad": [], "all": [], "dead_errors": {}}
            lock = threading.Lock()
            class Listener(stomp.ConnectionListener):
                def on_message(self, frame):
                    with lock:
                        seen["copies"] += 1
                        if frame.headers.get("destination") == dead:
                            parked = json.loads(frame.body)
                            seen["dead"].add(parked["headers"]["correlation-id"])
                            seen["dead_errors"][parked["headers"]["correlation-id"]] = parked["error"]["message"]
                            seen["all"].append(["dead letters", json.loads(frame.body)["headers"]["correlation-id"]])
                        else:
                            seen["all"].append(["answers", frame.headers["correlation-id"]])
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
            print(json.dumps({"replies": sorted(seen["replies"], key=int), "dead": sorted(seen["dead"], key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)), "copies": seen["copies"], "bad": seen["bad"][:5], "all": seen["all"], "dead_errors": seen["dead_errors"]}))
        """

    /// Runs `scripts/services.sh COMMAND` to its end. Started by swift-subprocess, with a clean
    /// signal mask: a broker it starts again must not inherit the test runner's blocked signals.
    static func services(_ command: String) async throws -> Int32 {
        let result = try await Subprocess.run(
            .name("bash"), arguments: [Self.root + "/scripts/services.sh", command, Self.root + "/.services"],
            output: .string(limit: 1 << 20), error: .combinedWithOutput
        )
        guard case .exited(let code) = result.terminationStatus else { return -1 }
        if code != 0 { print("services.sh \(command): \(result.standardOutput)") }
        return code
    }

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

    /// Collects the replies (`QUEUE.out`) and dead letters (`QUEUE.dead`) until `expected`
    /// correlation ids are seen or 90 s pass: the client's JSON summary.
    func drain(_ queue: String, expecting expected: Int, scratch: Scratch) async throws -> JSONValue {
        let drain = try self.python(["drain", queue + ".out", queue + ".dead", "\(expected)", "90"], in: scratch)
        let outputPath = scratch.path + "/drain.json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        drain.standardOutput = FileHandle(forWritingAtPath: outputPath)
        try drain.run()
        #expect(try await drain.exitStatus() == 0)
        return try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: outputPath)))
    }

    /// Drains the replies and dead letters of `total` messages and checks that each message
    /// was answered, or dead-lettered when it had no text (every hundredth, from 50). Delivery
    /// is at-least-once: duplicates are counted and reported, never a loss.
    @discardableResult
    func expectEveryMessageAnswered(_ queue: String, total: Int, scratch: Scratch) async throws -> Ledger {
        let summary = try await self.drain(queue, expecting: total, scratch: scratch)
        let replies = Set(summary["replies"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let dead = Set(summary["dead"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let expectedDead = Set(stride(from: 50, to: total, by: 100).map(String.init))
        let expectedReplies = Set((0..<total).map(String.init)).subtracting(expectedDead)
        #expect(dead == expectedDead)
        #expect(replies == expectedReplies, "missing: \(expectedReplies.subtracting(replies).count)")
        // A message that should be answered is never dead-lettered, not even once beside its
        // answer (a fault must not turn into a failure), and no dead letter is answered.
        let wronglyDead = dead.subtracting(expectedDead)
        #expect(wronglyDead.isEmpty, "dead-lettered, though they should be answered: \(wronglyDead.sorted().prefix(10))")
        #expect(replies.intersection(expectedDead).isEmpty, "answered, though they should be dead-lettered")
        #expect(summary["bad"] == [])
        var ledger = Ledger(expecting: (0..<total).map(String.init))
        for entry in summary["all"]?.arrayValue ?? [] {
            guard let pair = entry.arrayValue, pair.count == 2, let place = pair[0].stringValue, let id = pair[1].stringValue else { continue }
            ledger.found(id, in: place)
        }
        print("StompTests \(queue): \(ledger)")
        if !ledger.isComplete {
            // Where the missing went: still in the broker (a slow drain) or gone from it.
            let depths = try await Subprocess.run(
                .name("bash"), arguments: [Self.root + "/scripts/services.sh", "queues", Self.root + "/.services"], output: .string(limit: 1 << 20), error: .discarded
            )
            let lines = depths.standardOutput.split(separator: "\n").filter { $0.contains(queue.dropFirst("/queue/".count)) }
            print("StompTests \(queue): broker queues (name, ready, unacked): \(lines)")
        }
        #expect(ledger.isComplete, "\(ledger)")
        return ledger
    }

    /// Runs `sky run` on a fresh queue, publishes `total` messages, applies
    /// `scripts/services.sh FAULT` once `after` are done, and checks that every message was
    /// answered or dead-lettered, then that `sky` still stops cleanly.
    func streamThroughABrokerFault(_ fault: String, total: Int, after done: Int) async throws -> Ledger {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = try self.writeQueueRoute(scratch)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })
        let publish = try self.python(["publish", queue, queue + ".out", "\(total)"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        // The fault comes while messages are in flight (each takes 50 ms, 16 at a time, so the
        // stream lasts seconds): a fault after the last answer would prove nothing.
        var doneBeforeFault: Int64 = 0
        #expect(await eventually(within: 60) {
            doneBeforeFault = (try? await HTTP.get("\(base)/debug/vars").json["stomp.queue-done"]?.intValue) ?? 0
            return doneBeforeFault >= Int64(done)
        })
        #expect(try await Self.services(fault) == 0)
        #expect(doneBeforeFault < Int64(total) - 16, "the fault came after the stream had ended (\(doneBeforeFault) of \(total) done)")
        #expect(await eventually(within: 60) { sky.stderr.contains("connected to the broker again") })
        let ledger = try await self.expectEveryMessageAnswered(queue, total: total, scratch: scratch)
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
        return ledger
    }

    @Test func aThousandMessagesGetAThousandAnswersThroughABrokerRestart() async throws {
        _ = try await self.streamThroughABrokerFault("restart-broker", total: 1000, after: 150)
    }

    /// Issue 15: the broker itself is SIGKILLed (a crash, not a graceful stop) in the middle of
    /// a stream and started again. Answers were ACKed before the broker confirmed them, so an
    /// answer lost in the crash meant a message lost; now each ACK waits for the RECEIPT of its
    /// answer: every message is answered or dead-lettered, duplicates counted and reported.
    @Test func aBrokerKilledMidStreamLosesNoMessage() async throws {
        let ledger = try await self.streamThroughABrokerFault("kill-broker", total: 600, after: 100)
        #expect(ledger.count(in: "answers") + ledger.count(in: "dead letters") == 600)
    }

    /// STOMP over TLS: a route whose `url` is `stomps://` reaches RabbitMQ's TLS listener,
    /// verifying it against the test authority `scripts/services.sh` made (`--tls-ca`), and
    /// answers every message; without the authority the broker's certificate is refused and
    /// the log says so.
    @Test func aStompsRouteTalksToTheBrokerOverTLS() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-\(UUID().uuidString.prefix(8).lowercased())"
        try scratch.writeRoute("queue.yaml", """
            name: queue
            from:
              - stomp: { url: "stomps://127.0.0.1:61614", destination: \(queue), deadLetter: \(queue).dead, prefetch: 16 }
            steps:
              - service: slow
              - service: wordcount
                merge: true
            """)
        let authority = (ProcessInfo.processInfo.environment["SKYNET_RABBIT_DIR"] ?? "/tmp/skynet-rabbitmq") + "/tls/ca.pem"
        let untrusting = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "untrusting", directory: scratch.path)
        defer { untrusting.signal(SIGKILL) }
        #expect(await eventually(within: 20) { untrusting.stderr.contains("broker connection lost or refused") })
        #expect(untrusting.stderr.contains("CERTIFICATE_VERIFY_FAILED"), "\(untrusting.stderr.suffix(2000))")
        #expect(!untrusting.stderr.contains("subscribed"))
        untrusting.signal(SIGKILL)
        _ = try await untrusting.waitForExit()

        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--tls-ca", authority], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })
        let publish = try self.python(["publish", queue, queue + ".out", "200"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        try await self.expectEveryMessageAnswered(queue, total: 200, scratch: scratch)
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    /// Issue 32: a message over the 16 MiB frame limit made the codec throw; the session
    /// reconnected, the broker delivered the same message again, and the queue stalled for
    /// good. Now it is dead-lettered with its reason, unread, and the messages behind it are
    /// answered.
    @Test func aMessageOverTheLimitIsDeadLetteredAndTheOnesBehindItAreAnswered() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = try self.writeQueueRoute(scratch)
        // At the head of the queue before any consumer: the others are behind it.
        let big = try self.python(["big", queue, queue + ".out", "\(16 * 1024 * 1024 + 1)"], in: scratch)
        try big.run()
        #expect(try await big.exitStatus() == 0)
        let publish = try self.python(["publish", queue, queue + ".out", "60"], in: scratch)
        try publish.run()
        #expect(try await publish.exitStatus() == 0)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let summary = try await self.drain(queue, expecting: 61, scratch: scratch)
        let replies = Set(summary["replies"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let dead = Set(summary["dead"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        #expect(dead == ["big", "50"], "dead letters: \(dead.sorted())")
        #expect(replies == Set((0..<60).map(String.init)).subtracting(["50"]), "answered \(replies.count) of 59")
        let reason = summary["dead_errors"]?["big"]?.stringValue ?? ""
        #expect(reason.contains("body of 16777217 bytes is over the limit of 16777216"), "\(reason)")
        #expect(!sky.stderr.contains("reconnecting"), "the big message broke the connection")
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
        var doneBeforeKill: Int64 = 0
        #expect(await eventually(within: 60) {
            doneBeforeKill = (try? await HTTP.get("\(base)/debug/vars").json["stomp.queue-done"]?.intValue) ?? 0
            return doneBeforeKill >= 100
        })
        first.signal(SIGKILL)
        #expect(doneBeforeKill < Int64(total) - 16, "the kill came after the stream had ended (\(doneBeforeKill) of \(total) done)")
        _ = try await first.waitForExit()

        let second = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { second.signal(SIGKILL) }
        try await self.expectEveryMessageAnswered(queue, total: total, scratch: scratch)
    }
}
