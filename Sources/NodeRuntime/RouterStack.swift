import Foundation
public import Logging
public import RegistryKit
public import Routing
public import ServiceLifecycle
public import SkyLib
public import TLS

/// The pieces of a router: its route table and loader, the registry cache, the pooled client,
/// the out-of-band queue, the span recorder and the executor that ties them together. Every
/// node that runs routes (`sky run`, `sky router`, `sky initiator`) builds one.
public struct RouterStack: Sendable {
    /// The routes served, swapped whole on each reload.
    public let table: RouteTable
    /// Keeps `table` in step with the route files (or the registry's routes).
    public let loader: any RouteLoading
    /// The registry's nodes, refreshed in the background; requests read only this.
    public let cache: RegistryCache
    /// Pooled keep-alive connections to services.
    public let client: HTTPServiceClient
    /// Out-of-band steps in flight, bounded.
    public let asyncSteps: AsyncStepQueue
    /// Runs routes; the ``RouteRunner`` initiators hand requests to.
    public let executor: RouteExecutor
    /// This process's node id, shared by its registry record and the spans it records.
    public let nodeID: String
    /// Batches sampled requests' spans into the registry.
    public let spans: SpanRecorder

    /// - Parameter routes: a folder of route files, or `registry` for routes pushed there.
    /// - Parameters:
    ///   - local: services hosted in this process, called without a socket.
    ///   - sampler: decides which new requests are traced (initiators draw from the executor's).
    ///   - watchdog: the one timer for in-process calls' deadlines.
    ///   - spanExporter: where spans go besides the registry (`--otlp`).
    public init(
        routes: String, registry: any Registry, region: String, local: (any LocalServiceDirectory)?, counters: Counters, token: String?,
        tls: NodeTLS? = nil, sampler: TraceSampler, watchdog: DeadlineWatchdog, spanExporter: (any SpanExporter)? = nil, logger: Logger
    ) {
        self.table = RouteTable()
        if routes == "registry" {
            self.loader = RouteRegistryLoader(store: registry, table: self.table, counters: counters, logger: logger)
        } else {
            self.loader = RouteDirectoryLoader(directory: routes, table: self.table, counters: counters, logger: logger)
        }
        self.cache = RegistryCache(directory: registry, registryName: registry.displayName, logger: logger)
        self.client = HTTPServiceClient(token: token, tls: tls, logger: logger)
        self.asyncSteps = AsyncStepQueue(logger: logger)
        self.nodeID = Identifiers.nodeID()
        self.spans = SpanRecorder(
            registry: registry, recorder: self.nodeID, host: ProcessInfo.processInfo.hostName, counters: counters, exporter: spanExporter, logger: logger
        )
        let dispatcher = ServiceDispatcher(
            cache: self.cache, balancer: InstanceBalancer(region: region), client: self.client, local: local, watchdog: watchdog
        )
        self.executor = RouteExecutor(
            table: self.table, dispatcher: dispatcher, asyncSteps: self.asyncSteps, counters: counters, spans: self.spans, sampler: sampler,
            dedupe: registry, logger: logger
        )
    }

    /// Long-running parts, in start order; the `ServiceGroup` stops them in reverse, so the
    /// client pool and cache outlive everything that calls through them.
    public var services: [any Service] { [self.spans, self.cache, self.client, self.asyncSteps, self.loader] }
}
