public import AdminHTTP
import Foundation
import Hummingbird
public import Logging
public import NIOCore
public import ServiceLifecycle
public import SkyLib
public import TLS
public import RegistryKit

/// Hosts one service: serves the wire protocol (`POST /call`, `GET /health`, `GET /debug/vars`),
/// registers the node in the registry, heartbeats, and drains on shutdown.
///
/// Life of a host: **starting** (listening, registered) → **ready** (taking work, heartbeat
/// every ``Configuration/heartbeatInterval``) → on graceful shutdown (SIGTERM/SIGINT via the
/// `ServiceGroup`) **draining**: the registry is told first so routers stop choosing this node,
/// calls keep being answered for ``Configuration/drainDelay`` while their caches catch up, then
/// the server stops accepting, finishes what is in flight, and the record is removed.
///
/// - Important: run it inside a `ServiceGroup`; graceful shutdown is what starts the drain.
public final class ServiceHost: Service, Sendable {
    /// How a host listens and registers.
    public struct Configuration: Sendable {
        /// Interface to bind; `127.0.0.1` unless told otherwise.
        public var host: String = "127.0.0.1"
        /// Port to bind; 0 picks a free one.
        public var port: Int = 0
        /// Host name others should use to reach this node; defaults to the bound host, or for a
        /// wildcard bind (`0.0.0.0`) the first non-loopback IPv4 address (`AdvertisedAddress` in SkyLib).
        public var advertiseHost: String?
        /// The region registered; routers prefer instances in their own.
        public var region: String = "local"
        /// The environment registered (`production` unless told otherwise).
        public var environment: String = NodeRecord.defaultEnvironment
        /// How often the node's record is refreshed.
        public var heartbeatInterval: Duration = .seconds(1)
        /// Seconds without heartbeat after which the node counts as dead.
        public var ttl: Double = 3
        /// How long to keep answering after announcing `draining`.
        public var drainDelay: Duration = .milliseconds(600)
        /// Largest request body accepted.
        public var maxBodyBytes: Int = 4 * 1024 * 1024
        /// What a connection is allowed (idle and request timeouts, the connection cap).
        public var limits = HTTPLimits()
        /// Shared secret callers must send as `Authorization: Bearer …`, when set.
        public var token: String?
        /// The process's TLS; `/call` is served over HTTPS when it serves a certificate.
        public var tls: NodeTLS?
        /// Which remote commands (`sky stop`, `sky unregister` …) the host takes.
        public var commands: RemoteCommands = .none

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// How a host answers commands sent through the registry.
    public enum RemoteCommands: Sendable {
        /// Takes none.
        case none
        /// The host is its process (`sky service`): stop and restart act on the whole process,
        /// through these handlers (the node runtime's `ProcessLifecycle.nodeControl`).
        case process(NodeControl)
        /// The host is one part of a bigger process (named here, for messages, such as
        /// "`sky run` pid 42"): stop drains and removes this host only; restart is refused.
        case embedded(in: String)
    }

    /// Where the host is in its life (starting, ready, draining), the address it bound, and who
    /// waits for it to be ready.
    private struct State {
        var status: NodeStatus = .starting
        var address: String?
        var readyWaiters: [CheckedContinuation<String, any Error>] = []
        /// Why the server could not run, once it failed.
        var failure: (any Error)?
    }

    /// The hosted service.
    public let definition: ServiceDefinition
    /// This node's id in the registry (new for every process start).
    public let nodeID: String
    /// What the host was made with.
    public let configuration: Configuration
    /// The node's record in the registry; `nil` serves without registering (a service's own tests).
    private let presence: NodePresence?
    /// The process's counters, for `/debug/vars` and the node's stats.
    private let counters: Counters
    /// The handler's three counters, looked up once: a lookup by name per call showed in the
    /// profile.
    private let cells: (processed: CounterCell, errors: CounterCell, inflight: CounterCell)
    /// Where spans of sampled requests go; `nil` records none.
    private let spans: SpanRecorder?
    /// The host's logger, with the service's name in its metadata.
    private let logger: Logger
    /// Shared with the server's callbacks (the address once it binds), hence locked.
    private let state: Locked<State>
    /// Opened by graceful shutdown or by a remote stop: the host then drains and ends.
    private let stopLatch = Latch()
    /// Times calls against their deadlines (one timer for all of them).
    private let watchdog: DeadlineWatchdog
    /// The event loops the listener runs on.
    private let eventLoopGroup: any EventLoopGroup

    /// Creates a `ServiceHost` from its parts.
    /// - Parameters:
    ///   - definition: the service hosted: its name, version and handler.
    ///   - configuration: where it listens and how it registers.
    ///   - registry: where it registers and heartbeats; `nil`: it only serves.
    ///   - counters: where its calls are counted.
    ///   - nodeID: its node id in the registry.
    ///   - spans: records the spans of sampled calls; `nil`: none.
    ///   - logger: where it logs.
    ///   - eventLoopGroup: where the listener runs (the loops a node runtime hands down; a
    ///     service built alone passes its own).
    ///   - watchdog: the timer for calls' deadlines; one on `eventLoopGroup` unless given (the
    ///     node runtime hands the process's one).
    public init(
        definition: ServiceDefinition,
        configuration: Configuration = Configuration(),
        registry: (any PresenceStore)?,
        counters: Counters = Counters(),
        nodeID: String = Identifiers.nodeID(),
        spans: SpanRecorder? = nil,
        eventLoopGroup: any EventLoopGroup,
        watchdog: DeadlineWatchdog? = nil,
        logger: Logger
    ) {
        self.definition = definition
        self.eventLoopGroup = eventLoopGroup
        self.watchdog = watchdog ?? DeadlineWatchdog(eventLoop: eventLoopGroup.any())
        self.nodeID = nodeID
        self.configuration = configuration
        self.counters = counters
        self.cells = (
            counters.cell("\(definition.name)-processed"), counters.cell("\(definition.name)-errors"), counters.cell("\(definition.name)-inflight")
        )
        self.spans = spans
        var logger = logger
        logger[metadataKey: "service"] = "\(definition.name)"
        self.logger = logger
        let state = Locked(State())
        self.state = state
        let nodeID = self.nodeID
        let control = Self.control(configuration.commands, service: definition.name, stop: self.stopLatch)
        self.presence = registry.map { registry in
            NodePresence(registry: registry, nodeID: nodeID, interval: configuration.heartbeatInterval, control: control, logger: logger) { status in
                Self.record(nodeID: nodeID, definition: definition, configuration: configuration, address: state.withLock { $0.address }, status: status, counters: counters)
            }
        }
    }

    /// How remote commands reach this host: the process's own stop and restart, none, or (inside
    /// `sky run`) a stop of this host only.
    private static func control(_ commands: RemoteCommands, service: String, stop: Latch) -> NodeControl {
        switch commands {
        case .none:
            return .none
        case .process(let control):
            return control
        case .embedded(let process):
            return NodeControl(handlers: [
                .stop: { _ in
                    stop.open()
                    return .afterDeregistering("drained and deregistered; \(process) goes on without it")
                },
                .restart: { _ in
                    throw SkyError(.configuration, "\(service) runs inside \(process), which restarts only as a whole; restart that process, or run the service on its own (`sky service \(service)`)")
                },
            ])
        }
    }

    /// `HOST:PORT` once listening.
    public var address: String? { self.state.withLock { $0.address } }

    /// The node's status now.
    public var status: NodeStatus { self.state.withLock { $0.status } }

    /// Waits until the host is listening and registered, and answers its address.
    public func waitUntilReady() async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = self.state.withLock { state -> Result<String, any Error>? in
                if let failure = state.failure { return .failure(failure) }
                if state.status == .ready, let address = state.address { return .success(address) }
                state.readyWaiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// The node record as registered.
    public func record(status: NodeStatus) -> NodeRecord {
        Self.record(
            nodeID: self.nodeID, definition: self.definition, configuration: self.configuration,
            address: self.address, status: status, counters: self.counters
        )
    }

    /// The node record as it is now (heartbeats send it again, stats and all).
    private static func record(
        nodeID: String,
        definition: ServiceDefinition,
        configuration: Configuration,
        address: String?,
        status: NodeStatus,
        counters: Counters
    ) -> NodeRecord {
        let name = definition.name
        return NodeRecord(
            id: nodeID,
            kind: .service,
            service: name,
            version: definition.version,
            region: configuration.region,
            environment: configuration.environment,
            address: address ?? "",
            status: status,
            ttl: configuration.ttl,
            stats: [
                "processed": counters.value("\(name)-processed"),
                "errors": counters.value("\(name)-errors"),
                "inflight": counters.value("\(name)-inflight"),
            ]
        )
    }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        if let token = self.configuration.token {
            // Every endpoint but /health (which the reaper probes): /call and the admin ones.
            router.add(middleware: TokenMiddleware(token: token))
        }
        let table = EndpointTable()
        router.add(middleware: MethodNotAllowedMiddleware(table: table))
        table.record(.post, "call")
        router.post("call") { request, _ -> Response in
            await self.handleCall(request)
        }
        AdminEndpoints(
            counters: self.counters,
            health: {
                let status = self.status
                return (status == .ready, ["status": .string(status.rawValue), "service": .string(self.definition.name), "node": .string(self.nodeID)])
            }
        ).add(to: router, recording: table)

        let app = Application(
            router: router,
            server: self.configuration.limits.server(tls: self.configuration.tls),
            configuration: self.configuration.limits.configuration(host: self.configuration.host, port: self.configuration.port),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? self.configuration.port
                let address = AdvertisedAddress.forListener(
                    host: self.configuration.advertiseHost ?? self.configuration.host, port: port, tls: self.configuration.tls?.serves ?? false
                )
                self.state.withLock { $0.address = address }
                await self.becomeReady()
            },
            eventLoopGroupProvider: .shared(self.eventLoopGroup),
            logger: self.logger
        )
        // The server runs in its own group so its shutdown waits until the drain is announced.
        let server = ServiceGroup(configuration: .init(
            services: [ListeningApplication(app, host: self.configuration.host, port: self.configuration.port)], logger: self.logger
        ))
        let stop = self.stopLatch
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await server.run()
                } catch {
                    // It never listened (a busy port) or stopped serving: nobody may wait
                    // for it to be ready, and the host ends with the error.
                    self.failWaiters(error)
                    stop.open()
                    throw error
                }
            }
            group.addTask { await self.presence?.heartbeatLoop() }
            // Ends on graceful shutdown, a remote stop, a failed server, or cancellation (a
            // cancelled group must not leave the host waiting forever: the latch's wait ends
            // on cancellation).
            _ = await withGracefulShutdownHandler { await stop.wait() } onGracefulShutdown: { stop.open() }
            if self.state.withLock({ $0.failure }) != nil {
                group.cancelAll()
            } else {
                await self.drain()
                await server.triggerGracefulShutdown()
            }
            try await group.waitForAll()
        }
        await self.presence?.deregister()
    }

    /// The handler a router in this process calls directly (no socket): the service's own,
    /// counted in this host's `NAME-processed`, `-errors` and `-inflight` as calls over the
    /// wire are, so the counters count every call whichever path it took.
    public var inProcessHandler: any ServiceHandler {
        CountedHandler(base: self.definition.handler, processed: self.cells.processed, errors: self.cells.errors, inflight: self.cells.inflight)
    }

    /// Records why the server could not run and fails everyone waiting for it to be ready.
    private func failWaiters(_ error: any Error) {
        let waiters = self.state.withLock { state in
            defer { state.readyWaiters = [] }
            state.failure = error
            return state.readyWaiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    /// Registered as ready, then those waiting for the address are told: a router that reads the
    /// registry after `waitUntilReady()` returned finds the node.
    private func becomeReady() async {
        await self.presence?.register(status: .ready)
        let (address, waiters) = self.state.withLock { state in
            state.status = .ready
            defer { state.readyWaiters = [] }
            return (state.address ?? "", state.readyWaiters)
        }
        for waiter in waiters { waiter.resume(returning: address) }
        self.logger.info("service ready", metadata: ["address": "\(address)", "node": "\(self.nodeID)", "version": "\(self.definition.version)"])
    }

    /// Says `draining` in the registry first, so routers stop choosing this node, then keeps
    /// answering for ``Configuration/drainDelay`` while the routers' caches catch up (calls already
    /// on the way are answered, not refused).
    private func drain() async {
        self.state.withLock { $0.status = .draining }
        self.logger.info("draining: no new work, finishing what is in flight")
        await self.presence?.announceDraining()
        try? await Task.sleep(for: self.configuration.drainDelay)
    }

    /// `POST /call`: the envelope in, the handler's response out; a failure answers the error's
    /// status with `retryable` said, as docs/PROTOCOL.md lays down.
    private func handleCall(_ request: Request) async -> Response {
        let name = self.definition.name
        var request = request
        let envelope: RequestEnvelope
        do {
            let json = try await request.jsonBody(limit: self.configuration.maxBodyBytes)
            envelope = try RequestEnvelope(json: json)
        } catch {
            self.cells.errors.add()
            return .error(error)
        }
        self.cells.inflight.add()
        defer { self.cells.inflight.add(-1) }
        let timeout = request.headers[SkynetHeaders.timeout].flatMap { Int64($0) }
        let handler = self.definition.handler
        let started = ContinuousClock.now
        let startDate = envelope.trace.sampled ? Date() : nil
        var failure: SkyError?
        defer { self.recordSpan(envelope, start: startDate, elapsed: ContinuousClock.now - started, error: failure) }
        do {
            let response = try await handler.handle(envelope, before: envelope.monotonicDeadline(timeoutMilliseconds: timeout), watchdog: self.watchdog)
            self.cells.processed.add()
            return .json(response.json)
        } catch {
            self.cells.errors.add()
            switch error {
            case let error as SkyError:
                failure = error
            case is DeadlineExceeded:
                failure = SkyError(.deadlineExceeded, "\(name) did not finish before the deadline", retryable: true, service: name)
            default:
                failure = SkyError(.serviceError, "\(error)", service: name)
            }
            return .error(failure!)
        }
    }

    /// The service's own span, under the router's call span: time spent in this process.
    private func recordSpan(_ envelope: RequestEnvelope, start: Date?, elapsed: Duration, error: SkyError?) {
        guard let spans = self.spans, let start else { return }
        spans.record(Span(
            traceID: envelope.trace.traceID, spanID: Identifiers.spanID(), parentID: envelope.trace.spanID, kind: .service,
            name: self.definition.name, route: envelope.route, recorder: self.nodeID, host: spans.host,
            address: self.address, attempt: envelope.attempt, start: start, duration: elapsed.seconds, error: error?.message
        ))
    }
}

/// A handler whose calls are counted in its host's counters.
struct CountedHandler: ServiceHandler {
    let base: any ServiceHandler
    let processed: CounterCell
    let errors: CounterCell
    let inflight: CounterCell

    var completesPromptly: Bool { self.base.completesPromptly }

    func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        self.inflight.add()
        defer { self.inflight.add(-1) }
        do {
            let response = try await self.base.handle(request)
            self.processed.add()
            return response
        } catch {
            self.errors.add()
            throw error
        }
    }
}
