import Foundation
import Initiators
import NIOCore
import NIOPosix
import SkyLib
import Synchronization

/// Sends one STOMP message per input to the route's queue, its id as `correlation-id`, and
/// reads the answers from the route's `replyTo` queue and the failures from its `deadLetter`
/// queue. A message counts as handed over when the broker's RECEIPT for it arrives; one
/// whose receipt never came (the broker or the connection went down) is sent again, under
/// the same id, after the reconnect.
final class StompLoad: DrillLoad, Sendable {
    let source = "stomp"
    let ledger = DrillLedger()
    /// At-least-once delivery: a message in hand when the router stops is delivered again.
    let duplicatesAllowed = true
    /// The broker.
    let endpoint: StompInitiator.Endpoint
    /// The route's queue.
    let destination: String
    /// Where the route answers.
    let replyTo: String
    /// Where it parks failures, when it does.
    let deadLetter: String?
    /// Each message's body.
    let body: String
    /// The drill's id, in every message's id.
    let drillID: String
    /// Where the connection runs.
    let eventLoopGroup: any EventLoopGroup

    /// Sends waiting for their receipt, by receipt id (the input's id), with when each was sent;
    /// and ids to send again.
    private struct State {
        var unconfirmed: [String: Double] = [:]
        var again: [String] = []
        var next = 0
    }

    private let state = Mutex(State())

    /// Creates a `StompLoad` from its parts.
    init(endpoint: StompInitiator.Endpoint, destination: String, replyTo: String, deadLetter: String?, body: String, drillID: String, eventLoopGroup: any EventLoopGroup) {
        self.endpoint = endpoint
        self.destination = destination
        self.replyTo = replyTo
        self.deadLetter = deadLetter
        self.body = body
        self.drillID = drillID
        self.eventLoopGroup = eventLoopGroup
    }

    func run(_ pace: Pace, settle: Duration) async {
        let deadline = pace.end + settle
        while ContinuousClock.now < deadline {
            do {
                try await self.session(pace, deadline: deadline)
                return
            } catch {
                // The broker went away: what had no receipt is sent again after the reconnect.
                self.state.withLock { state in
                    state.again += state.unconfirmed.keys.sorted()
                    state.unconfirmed = [:]
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// One connection: subscribes to the answers, sends what is due, reads until every input
    /// is settled after the load's end, or the deadline.
    private func session(_ pace: Pace, deadline: ContinuousClock.Instant) async throws {
        let channel = try await ClientBootstrap(group: self.eventLoopGroup)
            .connectTimeout(.seconds(2))
            .connect(host: self.endpoint.host, port: self.endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(StompFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(StompFrameEncoder()))
                    return try NIOAsyncChannel<StompFrame, StompFrame>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(StompFrame(command: "CONNECT", headers: [
                ("accept-version", "1.2"), ("host", "/"), ("login", self.endpoint.login), ("passcode", self.endpoint.passcode), ("heart-beat", "0,0"),
            ]))
            let connected = Locked<Bool?>(nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await frame in inbound {
                        if connected.withLock({ $0 }) == nil {
                            connected.withLock { $0 = frame.command == "CONNECTED" }
                            guard frame.command == "CONNECTED" else {
                                throw DrillError(.badLoad, "the broker at \(self.endpoint.host):\(self.endpoint.port) refused CONNECT: \(frame[header: "message"] ?? frame.command)")
                            }
                            continue
                        }
                        self.read(frame, pace: pace)
                        if ContinuousClock.now >= pace.end && self.isSettled { return }
                    }
                    throw DrillError(.badLoad, "the broker closed the connection")
                }
                group.addTask {
                    // Subscribed once the broker accepted the CONNECT.
                    let accepted = await FaultInjector.poll(until: .now + .seconds(5)) { connected.withLock { $0 } != nil }
                    guard accepted, connected.withLock({ $0 }) == true else { throw DrillError(.badLoad, "no CONNECTED from the broker") }
                    try await outbound.write(StompFrame(command: "SUBSCRIBE", headers: [("id", "answers"), ("destination", self.replyTo), ("ack", "auto")]))
                    if let deadLetter = self.deadLetter {
                        try await outbound.write(StompFrame(command: "SUBSCRIBE", headers: [("id", "parked"), ("destination", deadLetter), ("ack", "auto")]))
                    }
                    try await self.send(pace, outbound: outbound)
                    // The reader ends once everything is settled; this ends it at the deadline.
                    while ContinuousClock.now < deadline && !self.isSettled {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                // Either the reader saw everything, or the deadline came: both end the session.
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Whether every input was handed over and has an outcome.
    private var isSettled: Bool {
        self.state.withLock { $0.unconfirmed.isEmpty && $0.again.isEmpty } && self.ledger.pending.isEmpty
    }

    /// Sends what is due (ids to send again first) until the load's end.
    private func send(_ pace: Pace, outbound: NIOAsyncChannelOutboundWriter<StompFrame>) async throws {
        while true {
            let again = self.state.withLock { state -> [String] in
                defer { state.again = [] }
                return state.again
            }
            for id in again { try await self.send(id, pace: pace, outbound: outbound) }
            let index = self.state.withLock { $0.next }
            guard await pace.wait(for: index) else { return }
            self.state.withLock { $0.next += 1 }
            try await self.send("\(self.drillID)-\(index)", pace: pace, outbound: outbound)
        }
    }

    /// One SEND, asking for a receipt.
    private func send(_ id: String, pace: Pace, outbound: NIOAsyncChannelOutboundWriter<StompFrame>) async throws {
        self.state.withLock { $0.unconfirmed[id] = pace.now() }
        try await outbound.write(StompFrame(command: "SEND", headers: [
            ("destination", self.destination), ("correlation-id", id), ("receipt", id), ("persistent", "true"), ("content-type", "application/json"),
        ], body: Array(self.body.utf8)))
    }

    /// An answer for a message whose RECEIPT has not come yet: it was handed over.
    private func confirm(_ id: String) {
        if let sentAt = self.state.withLock({ $0.unconfirmed.removeValue(forKey: id) }) { self.ledger.sent(id, at: sentAt) }
    }

    /// A RECEIPT (handed over), an answer or a dead letter.
    private func read(_ frame: StompFrame, pace: Pace) {
        switch frame.command {
        case "RECEIPT":
            guard let id = frame[header: "receipt-id"], let sentAt = self.state.withLock({ $0.unconfirmed.removeValue(forKey: id) }) else { return }
            self.ledger.sent(id, at: sentAt)
        case "MESSAGE" where frame[header: "subscription"] == "answers":
            guard let id = frame[header: "correlation-id"] else { return }
            self.confirm(id)
            self.ledger.record(.answered, for: id, at: pace.now())
        case "MESSAGE" where frame[header: "subscription"] == "parked":
            let parked = try? JSONParser.parse(frame.body)
            guard let id = parked?["headers"]?["correlation-id"]?.stringValue else { return }
            self.confirm(id)
            self.ledger.record(.parked(code: parked?["error"]?["code"]?.stringValue ?? "unknown"), for: id, at: pace.now())
        default:
            break
        }
    }
}
