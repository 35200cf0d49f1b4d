public import AdminHTTP
import Foundation
public import AsyncHTTPClient
public import Logging
public import NIOCore
public import NIOPosix
public import RegistryKit
public import ServiceLifecycle
public import SkyLib
import CoreMetrics
import RouteModel
public import TLS
public import Telemetry

/// What every long-running part of one process shares: the registry, counters, logger and its
/// level control, the trace sampler, the deadline timer, the event loops and the thread pool
/// for blocking work, and the process's lifecycle.
///
/// Made once per process (``bootstrap(logLevel:registry:region:environment:token:)`` for `sky` and the
/// services it generates; the memberwise init in tests) and handed down, so no part reaches
/// any of these through a global.
public struct NodeContext: Sendable {
    /// The registry every part reads and writes.
    public var registry: any Registry
    /// The counters `/debug/vars` and `/metrics` show.
    public var counters: Counters
    /// The process's logger.
    public var logger: Logger
    /// The level every logger of the process follows (SIGUSR1 raises it, SIGUSR2 lowers it).
    public var logLevel: LogLevelControl
    /// How the process stops and restarts (signals, `sky stop`, `sky restart`).
    public var lifecycle: ProcessLifecycle
    /// The region this node is in; routers prefer instances in their own.
    public var region: String
    /// The environment this node belongs to (`production` unless told otherwise).
    public var environment: String
    /// The shared secret callers must present, when set.
    public var token: String?
    /// The process's TLS (`--tls-cert` and friends); `nil`: plain HTTP everywhere.
    public var tls: NodeTLS?
    /// Decides which new requests are traced.
    public var sampler: TraceSampler
    /// The one timer for every in-process deadline (armed on one of ``eventLoopGroup``'s loops).
    public var watchdog: DeadlineWatchdog
    /// The event loops every listener, client and timer of the process runs on. The parts are
    /// handed this group rather than reaching for NIO's process-wide one, so an embedding
    /// program or a test chooses it once, here.
    public var eventLoopGroup: any EventLoopGroup
    /// Where blocking work goes (file reads and renames, fsync): never an event loop.
    public var threadPool: NIOThreadPool
    /// The client for the process's own short calls (health probes, the dashboard's reads of
    /// routers); the router keeps its own pool per process (`HTTPServiceClient`).
    public var httpClient: HTTPClient
    /// Where recorded spans go besides the registry (`--otlp`); `nil`: nowhere else.
    public var spanExporter: OTLPExporter?
    /// Pushes the process's metrics to the collector (`--otlp`); `nil`: they are only scraped.
    public var metricsExporter: OTLPMetricsExporter?
    /// The process's environment variables, as the command line gave them (library code reads
    /// settings from here, never from the process itself: a test or an embedding program
    /// passes its own).
    public var variables: [String: String] = [:]
    /// What every HTTP listener of the process allows a connection (`SKYNET_HTTP_*`).
    public var httpLimits = HTTPLimits()
    /// Longest a stopping listener or initiator may take to finish the input it holds
    /// (`--drain-timeout`, `SKYNET_DRAIN_TIMEOUT`); then that input is cancelled and left as a
    /// crash would leave it.
    public var drainLimit: Duration = Self.defaultDrainLimit

    /// The drain limit unless told otherwise: 20 s, inside the 30 s most supervisors
    /// (systemd's default stop timeout, Kubernetes' grace period) wait before SIGKILL.
    public static let defaultDrainLimit: Duration = .seconds(20)
    /// What a process may take after its listeners and initiators drained: deregistering,
    /// the last counts and spans written, hosted services drained.
    public static let shutdownMargin: Duration = .seconds(10)

    /// Creates a `NodeContext` from its parts.
    public init(
        registry: any Registry,
        counters: Counters = Counters(),
        logger: Logger,
        logLevel: LogLevelControl = LogLevelControl(),
        lifecycle: ProcessLifecycle = ProcessLifecycle(),
        region: String = "local",
        environment: String = NodeRecord.defaultEnvironment,
        token: String? = nil,
        tls: NodeTLS? = nil,
        sampler: TraceSampler = TraceSampler(perSecond: 100),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        threadPool: NIOThreadPool = .singleton,
        httpClient: HTTPClient = .shared,
        watchdog: DeadlineWatchdog? = nil,
        spanExporter: OTLPExporter? = nil
    ) {
        self.registry = registry
        self.counters = counters
        self.logger = logger
        self.logLevel = logLevel
        self.lifecycle = lifecycle
        self.region = region
        self.environment = environment
        self.token = token
        self.tls = tls
        self.sampler = sampler
        self.eventLoopGroup = eventLoopGroup
        self.threadPool = threadPool
        self.httpClient = httpClient
        self.watchdog = watchdog ?? DeadlineWatchdog(eventLoop: eventLoopGroup.any())
        self.spanExporter = spanExporter
    }

    /// Sets up this process: log lines to standard error at `logLevel` (changeable by
    /// signals); the metrics backends (Prometheus for `/metrics`, and OTLP to `otlpMetrics`
    /// when given), which the counters and swift-metrics' process-wide system both record
    /// into; the trace rate from `SKYNET_TRACE_PER_SECOND`; the registry at `address`; and span
    /// export to `otlp` (as `OTEL_SERVICE_NAME`, else `serviceName`). Once per process.
    /// - Throws: `SkyError` when the registry cannot be opened.
    /// - Parameter variables: the process's environment variables (the settings read from them:
    ///   `SKYNET_TRACE_PER_SECOND`, `SKYNET_HTTP_*`, `SKYNET_SUPERVISOR`, `OTEL_SERVICE_NAME`,
    ///   the STOMP broker's `SKYNET_STOMP_*`).
    public static func bootstrap(
        logLevel: Logger.Level, registry address: RegistryAddress, region: String, environment: String = NodeRecord.defaultEnvironment, token: String?,
        tls: TLSFiles = TLSFiles(), otlp: OTLPEndpoint? = nil, otlpMetrics: OTLPEndpoint? = nil, serviceName: String = "sky",
        variables: [String: String]
    ) async throws -> NodeContext {
        let control = LogLevelControl(logLevel)
        LoggingSystem.bootstrap { label in SkyLogHandler(label: label, control: control) }
        let logger = Logger(label: "sky")
        let nodeTLS = try tls.isEmpty ? nil : NodeTLS(files: tls)
        if let warning = nodeTLS?.expiryWarning() { logger.warning("\(warning)") }
        let registry = try await address.open()
        let name = variables["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? serviceName
        let group = MultiThreadedEventLoopGroup.singleton
        // The exporter is part of the counters' backend and exports their `/debug/vars` values:
        // made first, it reads the counters once they exist.
        let vars = Locked<Counters?>(nil)
        let metricsExporter = otlpMetrics.map { endpoint in
            OTLPMetricsExporter(
                endpoint: endpoint, serviceName: name, instance: Identifiers.nodeID(), interval: Self.metricsInterval(variables), vars: { vars.withLock { $0 }?.snapshot() ?? [:] },
                eventLoopGroup: group, logger: logger
            )
        }
        let counters = Counters(backend: MetricsBackends(scraped: PrometheusBackend(), pushed: metricsExporter))
        vars.withLock { $0 = counters }
        if let metricsExporter {
            counters.include(metricsExporter.exports, as: "otlp-metrics-exports")
            counters.include(metricsExporter.failures, as: "otlp-metrics-export-errors")
        }
        // Libraries outside ours that record through swift-metrics land in the same backends.
        MetricsSystem.bootstrap(counters.backend.factory)
        let exporter = otlp.map { OTLPExporter(endpoint: $0, serviceName: name, counters: counters, eventLoopGroup: group, logger: logger) }
        if let otlp { logger.info("spans exported over OTLP/HTTP to \(otlp.url) as \(name)") }
        if let otlpMetrics { logger.info("metrics exported over OTLP/HTTP to \(otlpMetrics.url) as \(name)") }
        var context = NodeContext(
            registry: registry, counters: counters, logger: logger, logLevel: control, lifecycle: ProcessLifecycle(supervisor: variables["SKYNET_SUPERVISOR"]),
            region: region, environment: environment, token: token, tls: nodeTLS, sampler: .fromEnvironment(variables), eventLoopGroup: group,
            spanExporter: exporter
        )
        context.metricsExporter = metricsExporter
        context.variables = variables
        context.httpLimits = HTTPLimits(environment: variables)
        return context
    }

    /// How often metrics are pushed: `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (the
    /// OpenTelemetry variable), 60 s when unset or not a positive number.
    static func metricsInterval(_ variables: [String: String]) -> Duration {
        guard let text = variables["OTEL_METRIC_EXPORT_INTERVAL"], let milliseconds = Int64(text), milliseconds > 0 else { return .seconds(60) }
        return .milliseconds(milliseconds)
    }

    /// Runs `services` as this process until it shuts down, with the log level following
    /// SIGUSR1/SIGUSR2 (``ProcessLifecycle/run(services:logger:gracefulLimit:)``). A graceful
    /// shutdown that has not ended after ``drainLimit`` and ``shutdownMargin`` is cancelled.
    public func run(_ services: [any Service]) async throws {
        var signals: [any Service] = [LogLevelSignals(control: self.logLevel, logger: self.logger)]
        if let tls = self.tls, tls.serves { signals.append(TLSReloadSignal(tls: tls, logger: self.logger)) }
        // The exporter first: the group stops services in reverse, so it sends the spans the
        // others record while they drain, and stops last.
        let exporter: [any Service] = (self.spanExporter.map { [$0] } ?? []) + (self.metricsExporter.map { [$0] } ?? [])
        try await self.lifecycle.run(services: exporter + services + signals, logger: self.logger, gracefulLimit: self.drainLimit + Self.shutdownMargin)
    }

    /// The admin endpoints (`/health`, `/debug/vars`, `/metrics`) at `address`, for a node
    /// that serves nothing else over HTTP; the bound address goes into `presence`'s record.
    public func adminServer(at address: ListenAddress, presence: ListeningPresence) -> AdminServer {
        AdminServer(
            host: address.host, port: address.port, token: self.token, endpoints: AdminEndpoints(counters: self.counters), tls: self.tls, limits: self.httpLimits,
            eventLoopGroup: self.eventLoopGroup, logger: self.logger, onServerRunning: { bound in await presence.listening(at: bound) }
        )
    }

    /// The presence of a node whose address is known once its listener binds.
    /// - Parameters:
    ///   - address: the address before the listener binds (`HOST:0` when a free port is
    ///     asked for, `-` for a node with no listener yet).
    ///   - control: which remote commands it takes; the process's own stop and restart unless given.
    ///   - stats: the record's stats, read on every write.
    public func presence(
        nodeID: String = Identifiers.nodeID(), kind: NodeKind, service: String, address: String, control: NodeControl? = nil,
        stats: @escaping @Sendable () -> [String: Int64] = { [:] }
    ) -> ListeningPresence {
        ListeningPresence(
            registry: self.registry, nodeID: nodeID, kind: kind, service: service, region: self.region, environment: self.environment, address: address,
            control: control ?? self.lifecycle.nodeControl, stats: stats, logger: self.logger
        )
    }
}
