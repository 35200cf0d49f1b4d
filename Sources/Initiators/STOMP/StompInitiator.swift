import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
import ServiceLifecycle
public import SkyLib
public import RouteModel

/// The STOMP initiator: every message on a destination becomes one route request.
///
/// Subscribes with `ack: client-individual` and a prefetch bound, runs the route for each
/// MESSAGE, then on success SENDs the answer to the message's `reply-to` header (else the
/// route's `replyTo`); on final failure SENDs the message with its error to `deadLetter`, or
/// NACKs when there is none. The SEND carries a `receipt` header and the message is ACKed
/// only when the broker's RECEIPT says it has the answer, so a crash of either side, a
/// dropped connection or a lost answer means redelivery, not loss (at-least-once: a message
/// in flight at a crash runs through its services again). Broker restarts and network drops:
/// reconnect with backoff, subscribe again.
///
/// At most `prefetch` messages are in the route at once, enforced here whatever the broker
/// does with the prefetch headers (`prefetch-count` for RabbitMQ, `activemq.prefetchSize` for
/// ActiveMQ): a MESSAGE beyond that waits unread, and the socket's backpressure holds the rest
/// at the broker.
///
/// The broker address comes from the route's `url` (`stomp://host:port`, or
/// `stomps://host:port` for STOMP over TLS, verified against the process's `--tls-ca`), else
/// `SKYNET_STOMP_URL`, else `stomp://127.0.0.1:61613`; login from the URL's user info, else
/// `SKYNET_STOMP_LOGIN`/`SKYNET_STOMP_PASSCODE`, else guest/guest. Credentials are never logged.
public final class StompInitiator: Initiator, Sendable {
    /// Which route the messages feed and where they come from.
    public struct Configuration: Sendable {
        /// The route each message runs.
        public var route: String
        /// The route's `stomp:` source.
        public var source: StompSource
        /// The STOMP virtual host (`host` header of CONNECT); RabbitMQ wants `/`.
        public var virtualHost: String = "/"
        /// How a `stomps://` broker is verified (the process's `--tls-ca` and client
        /// certificate); the system's trust store when `nil`.
        public var tls: TLSConfiguration?
        /// The process's environment variables: the broker and login when the route's `url`
        /// does not give them (`SKYNET_STOMP_URL`, `SKYNET_STOMP_LOGIN`, `SKYNET_STOMP_PASSCODE`).
        public var environment: [String: String] = [:]

        /// Creates a `Configuration` from its parts.
        public init(route: String, source: StompSource) {
            self.route = route
            self.source = source
        }
    }

    /// Where the broker is and who we are to it.
    public struct Endpoint: Sendable {
        /// The broker's host.
        public var host: String
        /// The broker's port.
        public var port: Int
        /// The CONNECT login.
        public var login: String
        /// The CONNECT passcode.
        public var passcode: String
        /// STOMP over TLS (`stomps://`, default port 61614).
        public var secure: Bool

        /// Reads `stomp://[user:pass@]host:port`, filling the gaps from the environment.
        public init(url: String?, environment: [String: String]) throws(SkyError) {
            let text = url ?? environment["SKYNET_STOMP_URL"] ?? "stomp://127.0.0.1:61613"
            guard let components = URLComponents(string: text), let scheme = components.scheme, ["stomp", "tcp", "stomps", "ssl"].contains(scheme),
                let host = components.host, !host.isEmpty
            else { throw SkyError(.configuration, "bad STOMP url '\(text)' (want stomp://host:port, or stomps://host:port for TLS)") }
            self.host = host
            self.secure = scheme == "stomps" || scheme == "ssl"
            self.port = components.port ?? (self.secure ? 61614 : 61613)
            self.login = components.user ?? environment["SKYNET_STOMP_LOGIN"] ?? "guest"
            self.passcode = components.password ?? environment["SKYNET_STOMP_PASSCODE"] ?? "guest"
        }
    }

    /// What this initiator was made with.
    public let configuration: Configuration
    private let runner: any RouteRunner
    private let counters: Counters
    private let logger: Logger
    /// Where the broker connection's channel runs.
    private let eventLoopGroup: any EventLoopGroup
    /// Where dead-lettered messages are reported (`sky failed`), beside the dead-letter queue.
    let failures: any FailedInputs
    /// The per-message counters, looked up once (`stomp.<route>-inflight`, `-done`).
    private let inflight: CounterCell
    private let done: CounterCell

    /// Creates a `StompInitiator` from its parts.
    /// - Parameters:
    ///   - eventLoopGroup: where the broker connection runs (the node's loops).
    ///   - failures: where dead-lettered messages are reported, so `sky failed` lists and
    ///     redrives them.
    public init(
        configuration: Configuration, runner: any RouteRunner, counters: Counters, eventLoopGroup: any EventLoopGroup,
        failures: any FailedInputs = NoFailedInputs(), logger: Logger
    ) {
        self.failures = failures
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.runner = runner
        self.counters = counters
        self.inflight = counters.cell("stomp.\(configuration.route)-inflight")
        self.done = counters.cell("stomp.\(configuration.route)-done")
        var logger = logger
        logger[metadataKey: "initiator"] = "stomp"
        logger[metadataKey: "destination"] = "\(configuration.source.destination)"
        self.logger = logger
    }

    public var summary: String { "stomp \(self.configuration.source.destination) → route \(self.configuration.route)" }

    /// What a NACK means depends on the broker; a route without `deadLetter` relies on it.
    public static let nackWarning =
        "no deadLetter: a failed message is NACKed, which RabbitMQ requeues (it comes back, again and again while it fails) and other brokers may discard or move to their own dead-letter queue; set deadLetter to keep failed messages with their error"

    /// `ack: auto` trades the guarantee for speed; said at start so nobody runs it unaware.
    public static let autoAckWarning =
        "ack: auto: messages are acknowledged on delivery (at-most-once); those in hand when this node stops or crashes are lost, and a failure without deadLetter is dropped"

    private var prefix: String { "stomp.\(self.configuration.route)" }

    public func run() async throws {
        let endpoint = try Endpoint(url: self.configuration.source.url, environment: self.configuration.environment)
        if self.configuration.source.deadLetter == nil { self.logger.warning("\(Self.nackWarning)") }
        if self.configuration.source.ack == .auto { self.logger.warning("\(Self.autoAckWarning)") }
        // Graceful shutdown (the process stopping, or the route dropping this source) drains
        // the session: no new message is taken, those in hand are answered, acked and then
        // the connection closed (``session(_:stopping:onSubscribed:)``). Past the drain limit
        // the session is cancelled: messages still in hand stay unacked and the broker delivers
        // them again, to us after a restart or to another consumer.
        let stopping = Latch()
        await withGracefulShutdownHandler {
            let state = Locked((failing: false, delay: Duration.milliseconds(100)))
            while !Task.isCancelled && !stopping.isOpen {
                do {
                    try await self.session(endpoint, stopping: stopping) {
                        let wasFailing = state.withLock { state in
                            defer { state = (false, .milliseconds(100)) }
                            return state.failing
                        }
                        if wasFailing { self.logger.notice("connected to the broker again; subscribed") }
                    }
                } catch {
                    let first = state.withLock { state in
                        defer { state.failing = true }
                        return !state.failing
                    }
                    if first && !stopping.isOpen {
                        self.logger.error("broker connection lost or refused; reconnecting with backoff", metadata: ["broker": "\(endpoint.host):\(endpoint.port)", "error": "\(error)"])
                    }
                    self.counters.add("\(self.prefix)-reconnects")
                }
                guard !Task.isCancelled, !stopping.isOpen else { break }
                let delay = state.withLock { state in
                    defer { state.delay = min(state.delay * 2, .seconds(5)) }
                    return state.delay
                }
                // The back-off ends early when a stop comes.
                await withTaskGroup(of: Void.self) { wait in
                    wait.addTask { try? await Task.sleep(for: delay) }
                    wait.addTask { await stopping.wait() }
                    await wait.next()
                    wait.cancelAll()
                }
            }
        } onGracefulShutdown: {
            stopping.open()
        }
    }

    /// The header a redriven message carries: its failed item's id, so a new failure is the
    /// same item, one attempt more.
    static let failedIDHeader = "skynet-failed-id"

    /// Headers the broker sets on a delivery, not the sender's: left out of what a redrive
    /// sends again.
    static let transportHeaders: Set<String> = ["message-id", "subscription", "ack", "destination", "redelivered", "content-length", "receipt"]

    /// The headers its sender gave `message`, as a JSON object: what a redrive sends again.
    static func senderHeaders(_ message: StompFrame) -> String {
        JSONWriter.string(.object(Dictionary(
            message.headers.filter { !Self.transportHeaders.contains($0.0) }.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { first, _ in first }
        )))
    }

    /// Holds `key`'s lane with a failed message: reports it (`sky failed`), waits for its fate,
    /// and runs it again in place each time it is redriven.
    /// - Returns: the answer once a run succeeds; the last error, its drop's reason added, once
    ///   it is dropped; `nil` when the source stops first (the message stays unacked and comes
    ///   back).
    private func hold(
        _ message: StompFrame, key: String, error: SkyError, stopping: Latch, rerun: () async throws(SkyError) -> RouteResult
    ) async -> Result<RouteResult, SkyError>? {
        let source = self.configuration.source
        let id = message[header: Self.failedIDHeader] ?? "stomp-" + Identifiers.requestID()
        var error = error
        while true {
            self.counters.add("\(self.prefix)-held")
            self.logger.warning("message failed; its lane is held until it is redriven or dropped", metadata: ["key": "\(key)", "id": "\(id)", "error": "\(error)"])
            self.failures.failed(FailedInput(
                route: self.configuration.route, source: .stomp, resource: source.destination, identity: .given(id), input: message.body,
                details: ["headers": Self.senderHeaders(message), "orderKey": key, "hold": "true"], error: error
            ))
            switch await self.failures.decision(route: self.configuration.route, source: .stomp, resource: source.destination, identity: .given(id), isStopping: { stopping.isOpen }) {
            case .runAgain:
                do throws(SkyError) {
                    let result = try await rerun()
                    self.failures.succeeded(route: self.configuration.route, source: .stomp, resource: source.destination, identity: .given(id))
                    return .success(result)
                } catch let again {
                    error = again
                }
            case .dropped(let reason):
                error.message += " (dropped: \(reason))"
                return .failure(error)
            case .stopped:
                return nil
            }
        }
    }

    /// The receipt id of the DISCONNECT that ends a drained session.
    static let disconnectReceipt = "sky-disconnect"

    /// One connection: CONNECT, SUBSCRIBE, handle messages until the connection ends, or, once
    /// `stopping` opens, until the messages in hand are answered and acked (messages the broker
    /// sends meanwhile are left unacked and come back after the DISCONNECT).
    private func session(_ endpoint: Endpoint, stopping: Latch, onSubscribed: @Sendable () -> Void) async throws {
        // Made before the connection: its RECEIPTs are answered on the event loop.
        let inHand = StompInHand()
        let channel = try await self.connect(endpoint, inHand: inHand)
        let source = self.configuration.source
        try await channel.executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            try await self.login(endpoint, frames: &frames, outbound: outbound)
            onSubscribed()
            self.logger.info("subscribed", metadata: ["prefetch": "\(source.prefetch)"])
            // One writer task: what concurrent handlers answer (and the DISCONNECT) goes out in
            // order, all that is ready at once in one write; ACKs after a RECEIPT are written on
            // the event loop (StompReceiptHandler).
            let outbox = StompOutbox()
            let permits = Permits(source.prefetch)
            let disconnecting = Locked(false)
            // The connection is over: the drain has nothing left to do.
            let ended = Latch()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Everything added since the last write goes out in one write and one flush.
                    while let frames = await outbox.next() {
                        try await outbound.write(contentsOf: frames)
                    }
                }
                group.addTask {
                    guard await self.drain(inHand, stopping: stopping, ended: ended) else { return }
                    disconnecting.withLock { $0 = true }
                    outbox.send([StompFrame(command: "DISCONNECT", headers: [("receipt", Self.disconnectReceipt)])])
                }
                try await self.read(&frames, stopping: stopping, permits: permits, inHand: inHand, outbox: outbox, lanes: KeyedLanes())
                // The broker closed the connection (or confirmed our DISCONNECT): answers
                // without a RECEIPT stay unacked and their messages come back. Close politely
                // once what is queued is written.
                let unconfirmed = inHand.unconfirmed
                if unconfirmed > 0 {
                    self.counters.add("\(self.prefix)-unconfirmed", Int64(unconfirmed))
                    self.logger.notice("\(unconfirmed) answer(s) sent without a RECEIPT before the connection ended; their messages will be delivered again")
                }
                if !disconnecting.withLock({ $0 }) { outbox.send([StompFrame(command: "DISCONNECT")]) }
                ended.open()
                outbox.finish()
                inHand.finish()
                try await group.waitForAll()
            }
        }
        if stopping.isOpen { self.logger.info("drained: every message in hand answered and acked; disconnected") }
    }

    /// Reads the connection's frames until it ends or the broker confirms our DISCONNECT:
    /// each MESSAGE is handled in its own task (within the prefetch permits), an ERROR ends the
    /// session (the RECEIPTs of answers never come here: ``StompReceiptHandler`` releases their
    /// acks on the event loop). Returns once every handler has ended.
    private func read(
        _ frames: inout NIOAsyncChannelInboundStream<StompFrame>.AsyncIterator, stopping: Latch, permits: Permits, inHand: StompInHand,
        outbox: StompOutbox, lanes: KeyedLanes
    ) async throws {
        try await withThrowingDiscardingTaskGroup { handlers in
            reading: while let frame = try await frames.next() {
                switch frame.command {
                case "MESSAGE":
                    // Sent after the stop: left unacked, it is delivered again once we
                    // disconnect.
                    guard !stopping.isOpen else { continue }
                    // The engine's own bound: brokers that ignore the prefetch headers
                    // would otherwise put a whole backlog in flight.
                    await permits.acquire()
                    guard !stopping.isOpen else {
                        permits.release()
                        continue
                    }
                    inHand.started()
                    self.inflight.add()
                    // An ordered source: the message's place in its key's lane is taken here, in
                    // the order the broker delivered; a message without the key header has none.
                    let ticket = self.configuration.source.order.flatMap { frame[header: $0.key] }.map(lanes.reserve)
                    handlers.addTask {
                        defer {
                            self.inflight.add(-1)
                            permits.release()
                            inHand.ended()
                        }
                        if let ticket { await lanes.wait(for: ticket) }
                        // Its turn came after the stop (it waited behind its key), or the wait was
                        // cut short past the drain limit: not started, left unacked, so it comes
                        // back after the message it waited for.
                        if let ticket, !lanes.isTurn(of: ticket) || stopping.isOpen {
                            lanes.leave(ticket)
                            return
                        }
                        var answer = await self.handle(frame, stopping: stopping)
                        // `ack: auto`: the broker counted the message delivered already.
                        if self.configuration.source.ack == .auto { answer.then = [] }
                        if let ticket { lanes.leave(ticket) }
                        guard !answer.send.isEmpty else {
                            outbox.send(answer.then)
                            return
                        }
                        outbox.send(inHand.awaitReceipt(for: answer.send, then: answer.then, message: Self.describe(frame)))
                    }
                case "RECEIPT":
                    // Those of answers were answered on the event loop (StompReceiptHandler).
                    if frame[header: "receipt-id"] == Self.disconnectReceipt { break reading }
                    self.logger.warning("RECEIPT for nothing we sent", metadata: ["receipt-id": "\(frame[header: "receipt-id"] ?? "")"])
                case "ERROR":
                    throw StompProtocolError(reason: "broker error: \(frame[header: "message"] ?? String(decoding: frame.body, as: UTF8.self))")
                default:
                    continue
                }
            }
        }
    }

    /// Opens the connection to the broker: TCP (and TLS for `stomps://`), with the STOMP codec,
    /// and with `inHand`, the RECEIPTs of its answers answered on the event loop
    /// (``StompReceiptHandler``).
    func connect(_ endpoint: Endpoint, inHand: StompInHand? = nil) async throws -> NIOAsyncChannel<StompFrame, StompFrame> {
        // Made per session: a renewed authority file is read on the next reconnect.
        let tls = try endpoint.secure ? NIOSSLContext(configuration: self.configuration.tls ?? .makeClientConfiguration()) : nil
        return try await ClientBootstrap(group: self.eventLoopGroup)
            .connectTimeout(.seconds(2))
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // The broker's name is checked against its certificate (an IP address
                        // against its IP names; SNI only for host names).
                        let isAddress = endpoint.host.contains(":") || endpoint.host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : endpoint.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(StompFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(StompFrameEncoder()))
                    if let inHand { try channel.pipeline.syncOperations.addHandler(StompReceiptHandler(inHand: inHand, logger: self.logger)) }
                    return try NIOAsyncChannel<StompFrame, StompFrame>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// CONNECT (refused: throws with the broker's reason), then SUBSCRIBE with client acks and
    /// the prefetch bound.
    private func login(
        _ endpoint: Endpoint, frames: inout NIOAsyncChannelInboundStream<StompFrame>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<StompFrame>
    ) async throws {
        let source = self.configuration.source
        try await outbound.write(StompFrame(command: "CONNECT", headers: [
            ("accept-version", "1.2"), ("host", self.configuration.virtualHost),
            ("login", endpoint.login), ("passcode", endpoint.passcode), ("heart-beat", "0,0"),
        ]))
        guard let connected = try await frames.next() else { throw StompProtocolError(reason: "broker closed the connection during CONNECT") }
        guard connected.command == "CONNECTED" else {
            throw StompProtocolError(reason: "broker refused CONNECT: \(connected[header: "message"] ?? connected.command)")
        }
        try await outbound.write(StompFrame(command: "SUBSCRIBE", headers: [
            ("id", "0"), ("destination", source.destination), ("ack", source.ack.rawValue),
            ("prefetch-count", "\(source.prefetch)"), ("activemq.prefetchSize", "\(source.prefetch)"),
        ]))
    }

    /// The drain: once `stopping` opens, waits until nothing is in hand.
    /// - Returns: whether to DISCONNECT now (`false`: the connection ended before any stop).
    ///
    /// No UNSUBSCRIBE: RabbitMQ refuses ACKs for a subscription that is gone, so the messages
    /// in hand would come back. The few the broker still sends (up to the prefetch) are left
    /// unacked and come back after the DISCONNECT.
    private func drain(_ inHand: StompInHand, stopping: Latch, ended: Latch) async -> Bool {
        let stop = await withTaskGroup(of: Bool.self) { race in
            race.addTask { await stopping.wait() }
            race.addTask {
                await ended.wait()
                return false
            }
            let first = await race.next() ?? false
            race.cancelAll()
            return first
        }
        guard stop else { return false }
        let count = inHand.count
        if count > 0 { self.logger.notice("stopping: finishing \(count) message(s) in hand, taking no more") }
        await inHand.waitUntilEmpty()
        return true
    }

    /// A message named for the log: its id and correlation id (the id the broker gave it, the
    /// correlation id the sender gave it: `scripts/broker-cycles.py` looks a message up by it).
    static func describe(_ message: StompFrame) -> String {
        "message-id=\(message[header: "message-id"] ?? "") correlation-id=\(message[header: "correlation-id"] ?? "")"
    }

    /// What to send for one message: `send` (the reply or dead letter, which needs the
    /// broker's RECEIPT) and `then` (the ACK or NACK, sent after that RECEIPT, or at once when
    /// there is nothing to send).
    struct Answer: Sendable {
        var send: [StompFrame]
        var then: [StompFrame]
    }

    /// Runs the route for one MESSAGE and answers the frames to send: the reply (or the dead
    /// letter) and then the ACK, or a NACK.
    private func handle(_ message: StompFrame, stopping: Latch) async -> Answer {
        let source = self.configuration.source
        let ackID = message[header: "ack"] ?? message[header: "message-id"] ?? ""
        var meta = ["source": "stomp", "destination": source.destination]
        if let id = message[header: "message-id"] { meta["message-id"] = id }
        if let correlation = message[header: "correlation-id"] { meta["correlation-id"] = correlation }
        let failure: SkyError
        // Set once a held message's failure was reported (and then dropped): not reported again.
        var reported = false
        do throws(SkyError) {
            // A message that could not be read whole (over a limit, a malformed header) goes
            // to the dead letter with the reason, never into the route.
            if let problem = message.problem { throw SkyError(.badRequest, "the message could not be read: \(problem)") }
            let payload: JSONValue
            do {
                payload = try JSONParser.parse(message.body)
            } catch {
                if message[header: "content-type"]?.contains("json") == true {
                    throw SkyError(.badRequest, "message body is not valid JSON: \(error)")
                }
                payload = .string(String(decoding: message.body, as: UTF8.self))
            }
            let run = { () async throws(SkyError) -> RouteResult in
                try await self.runner.run(RequestEnvelope(route: self.configuration.route, payload: payload, meta: meta, trace: self.runner.sampler.root()))
            }
            let result: RouteResult
            do throws(SkyError) {
                result = try await run()
            } catch {
                // `onFailure: hold`: the message stays in hand, unacked, holding its key's lane
                // until it is redriven (and runs again here) or dropped.
                guard source.order?.onFailure == .hold, let key = source.order.flatMap({ message[header: $0.key] }), !Task.isCancelled else { throw error }
                switch await self.hold(message, key: key, error: error, stopping: stopping, rerun: run) {
                case .success(let answer): result = answer
                case .failure(let final):
                    reported = true
                    throw final
                case nil: return Answer(send: [], then: [])
                }
            }
            self.done.add()
            if self.failures.redrivesInFlight, let id = message[header: Self.failedIDHeader] {
                self.failures.succeeded(route: self.configuration.route, source: .stomp, resource: source.destination, identity: .given(id))
            }
            var send: [StompFrame] = []
            if let replyTo = message[header: "reply-to"] ?? source.replyTo {
                var headers = [("destination", replyTo), ("content-type", "application/json"), ("persistent", "true")]
                headers.append(("correlation-id", message[header: "correlation-id"] ?? message[header: "message-id"] ?? ""))
                var body: [UInt8] = []
                JSONWriter.append(result.answerDocument, to: &body)
                send.append(StompFrame(command: "SEND", headers: headers, body: body))
            }
            return Answer(send: send, then: [StompFrame(command: "ACK", headers: [("id", ackID)])])
        } catch {
            failure = error
        }
        // Cancelled (shutdown, route removed): not a failure of the message; leave it unacked.
        if Task.isCancelled { return Answer(send: [], then: []) }
        self.counters.add("\(self.prefix)-failed")
        self.logger.warning("message failed", metadata: ["message-id": "\(message[header: "message-id"] ?? "")", "error": "\(failure)"])
        guard let deadLetter = source.deadLetter else {
            return Answer(send: [], then: [StompFrame(command: "NACK", headers: [("id", ackID)])])
        }
        if !reported {
            self.failures.failed(FailedInput(
                route: self.configuration.route, source: .stomp, resource: source.destination,
                identity: message[header: Self.failedIDHeader].map(FailedInput.Identity.given) ?? .fresh, input: message.problem == nil ? message.body : nil,
                details: ["headers": Self.senderHeaders(message)], error: failure
            ))
        }
        let parked: JSONValue = [
            "error": failure.json["error"] ?? .null,
            "route": .string(self.configuration.route),
            // A body that was not read (over the limit) is not here to keep.
            "message": message.problem == nil ? .string(String(decoding: message.body, as: UTF8.self)) : .null,
            "headers": .object(Dictionary(message.headers.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { first, _ in first })),
        ]
        return Answer(
            send: [StompFrame(command: "SEND", headers: [("destination", deadLetter), ("content-type", "application/json"), ("persistent", "true")], body: Array(JSONWriter.string(parked).utf8))],
            then: [StompFrame(command: "ACK", headers: [("id", ackID)])]
        )
    }
}
