import Foundation
public import RegistryKit
public import ServiceLifecycle
public import Services
public import SkyLib
import RouteModel

/// A node that hosts one service as its own process, assembled from its parts: what `sky
/// service NAME` starts (and a test starts in-process). The ``ServiceHost`` (serve `/call`,
/// register, heartbeat, drain) and the recorder of the spans it records, with the process's
/// region, environment, token, TLS and lifecycle; remote `sky stop` and `sky restart` act on
/// the process.
public struct ServiceNode: Sendable {
    /// What the node runs.
    public struct Configuration: Sendable {
        /// Where `/call` and the admin endpoints listen (`port` 0: any free port).
        public var listen = ListenAddress(host: "127.0.0.1", port: 0)
        /// Seconds without a heartbeat after which the reaper removes the node.
        public var ttl: Double = 3
        /// How often the node heartbeats.
        public var heartbeat: Duration = .seconds(1)

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// The service hosted.
    public let definition: ServiceDefinition
    /// What its parts share, its lifecycle among them.
    public let context: NodeContext
    /// The host: serves, registers, heartbeats, drains.
    public let host: ServiceHost
    /// Batches the host's spans into the registry (and OTLP, when the process exports).
    public let spans: SpanRecorder

    /// Creates a `ServiceNode` hosting `definition`.
    public init(definition: ServiceDefinition, configuration: Configuration, context: NodeContext) {
        self.definition = definition
        self.context = context
        var hostConfiguration = ServiceHost.Configuration()
        hostConfiguration.host = configuration.listen.host
        hostConfiguration.port = configuration.listen.port
        hostConfiguration.region = context.region
        hostConfiguration.environment = context.environment
        hostConfiguration.ttl = configuration.ttl
        hostConfiguration.heartbeatInterval = configuration.heartbeat
        hostConfiguration.token = context.token
        hostConfiguration.tls = context.tls
        hostConfiguration.limits = context.httpLimits
        hostConfiguration.commands = .process(context.lifecycle.nodeControl)
        let nodeID = Identifiers.nodeID()
        self.spans = SpanRecorder(
            registry: context.registry, recorder: nodeID, host: ProcessInfo.processInfo.hostName, counters: context.counters,
            exporter: context.spanExporter, logger: context.logger
        )
        self.host = ServiceHost(
            definition: definition, configuration: hostConfiguration, registry: context.registry, counters: context.counters, nodeID: nodeID,
            spans: self.spans, eventLoopGroup: context.eventLoopGroup, watchdog: context.watchdog, logger: context.logger
        )
    }

    /// The node's parts, in start order (the group stops them in reverse: the host drains
    /// before the span recorder's last flush).
    public var services: [any Service] { [self.spans, self.host] }

    /// Runs the node as this process until it shuts down.
    /// - Parameter onReady: called with the address `/call` listens on once the node is
    ///   registered and serving (the `sky` tool prints it).
    public func run(onReady: @escaping @Sendable (String) async -> Void = { _ in }) async throws {
        let host = self.host
        try await self.context.run(self.services + [WhenReady { await onReady(try await host.waitUntilReady()) }])
    }
}

/// Calls `body` once the parts it waits for are ready, then stays until shutdown (a service
/// that returned early would end the whole group).
struct WhenReady: Service {
    let body: @Sendable () async throws -> Void

    func run() async throws {
        try await self.body()
        try? await gracefulShutdown()
    }
}
