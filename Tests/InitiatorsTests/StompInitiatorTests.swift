import Foundation
import Logging
import NIOCore
import NIOPosix
import SkyTestSupport
import Testing

@testable import Initiators
@testable import SkyLib
import RouteModel

/// The STOMP initiator against a stand-in broker that behaves as brokers other than RabbitMQ
/// may: it ignores the prefetch headers and sends a whole backlog at once, and it answers
/// RECEIPTs late. The end-to-end tests (`StompTests`) run against the real RabbitMQ.
@Suite(.timeLimit(.minutes(1)))
struct StompInitiatorTests {
    /// What the stand-in broker saw.
    struct Seen: Sendable {
        var acks: [String] = []
        /// ACKs that came before the RECEIPT of their message's answer.
        var acksBeforeReceipt: [String] = []
        var receiptsAsked = 0
        var subscribeHeaders: [String: String] = [:]
    }

    /// Accepts one connection, sends `count` messages at once after SUBSCRIBE, answers each
    /// SEND's receipt 20 ms late, and records the ACKs until all are in.
    func broker(count: Int, seen: Locked<Seen>) async throws -> (port: Int, run: @Sendable () async throws -> Void) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(StompFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(StompFrameEncoder()))
                    return try NIOAsyncChannel<StompFrame, StompFrame>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? 0
        return (port, {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        let confirmed = Locked(Set<String>())
                        try await withThrowingTaskGroup(of: Void.self) { late in
                            for try await frame in inbound {
                                switch frame.command {
                                case "CONNECT":
                                    try await outbound.write(StompFrame(command: "CONNECTED", headers: [("version", "1.2")]))
                                case "SUBSCRIBE":
                                    seen.withLock { $0.subscribeHeaders = Dictionary(frame.headers, uniquingKeysWith: { first, _ in first }) }
                                    // The whole backlog at once, whatever the prefetch said.
                                    try await outbound.write(contentsOf: (0..<count).map { index in
                                        StompFrame(command: "MESSAGE", headers: [
                                            ("subscription", "0"), ("destination", "/queue/in"), ("message-id", "m-\(index)"), ("ack", "a-\(index)"),
                                            ("content-type", "application/json"),
                                        ], body: Array("{\"n\":\(index)}".utf8))
                                    })
                                case "SEND":
                                    let correlation = frame[header: "correlation-id"] ?? ""
                                    guard let receipt = frame[header: "receipt"] else { continue }
                                    seen.withLock { $0.receiptsAsked += 1 }
                                    late.addTask {
                                        try await Task.sleep(for: .milliseconds(20))
                                        confirmed.withLock { _ = $0.insert(correlation) }
                                        try await outbound.write(StompFrame(command: "RECEIPT", headers: [("receipt-id", receipt)]))
                                    }
                                case "ACK", "NACK":
                                    let id = frame[header: "id"] ?? ""
                                    let message = "m-" + id.dropFirst(2)
                                    let done = seen.withLock { seen in
                                        seen.acks.append(id)
                                        if !confirmed.withLock({ $0.contains(message) }) { seen.acksBeforeReceipt.append(id) }
                                        return seen.acks.count == count
                                    }
                                    if done { return }
                                default:
                                    continue
                                }
                            }
                        }
                    }
                    return
                }
            }
        })
    }

    /// Issue 15: the engine relied on the broker to honour `prefetch-count` (RabbitMQ's header),
    /// so a broker that ignores it put a whole backlog in flight; and it ACKed in the same
    /// write as the answer, before the broker confirmed it. Now at most `prefetch` messages
    /// run at once, and each ACK follows the RECEIPT of its answer.
    @Test func atMostPrefetchInFlightAndEachAckAfterItsAnswersReceipt() async throws {
        let count = 60
        let prefetch = 4
        let seen = Locked(Seen())
        let (port, runBroker) = try await self.broker(count: count, seen: seen)
        let concurrency = Locked((now: 0, peak: 0))
        let runner = FakeRunner(behaviour: { request throws(SkyError) in
            concurrency.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
            try? await Task.sleep(for: .milliseconds(5))
            concurrency.withLock { $0.now -= 1 }
            return RouteResult(payload: request.payload)
        }, routes: ["r"])
        let source = StompSource(url: "stomp://127.0.0.1:\(port)", destination: "/queue/in", replyTo: "/queue/out", deadLetter: "/queue/dead", prefetch: prefetch)
        let counters = Counters()
        let initiator = StompInitiator(configuration: .init(route: "r", source: source), runner: runner, counters: counters, eventLoopGroup: TestIO.eventLoopGroup,
            logger: Logger(label: "test")
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            try await runBroker()
            group.cancelAll()
        }
        let result = seen.withLock { $0 }
        #expect(Set(result.acks) == Set((0..<count).map { "a-\($0)" }) && result.acks.count == count, "each message acked once")
        #expect(result.receiptsAsked == count, "every answer asked for a receipt")
        #expect(result.acksBeforeReceipt.isEmpty, "acked before the broker confirmed the answer: \(result.acksBeforeReceipt)")
        #expect(concurrency.withLock { $0.peak } <= prefetch, "peak in flight \(concurrency.withLock { $0.peak }) > prefetch \(prefetch)")
        #expect(result.subscribeHeaders["prefetch-count"] == "4" && result.subscribeHeaders["activemq.prefetchSize"] == "4")
    }
}
