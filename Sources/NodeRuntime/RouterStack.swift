import Foundation
import Logging
public import RegistryKit
public import Routing
public import ServiceLifecycle
public import SkyLib
import RouteModel
import TLS

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

    /// - Parameters:
    ///   - routes: a folder of route files, or `registry` for routes pushed there.
    ///   - local: services hosted in this process, called without a socket.
    ///   - context: the process's shared parts: the registry, region, counters, token and TLS,
    ///     the trace sampler (initiators draw from the executor's), the deadline timer, the span
    ///     exporter (`--otlp`), the event loops and the thread pool.
    public init(routes: String, local: (any LocalServiceDirectory)?, context: NodeContext) {
        let (registry, counters, logger) = (context.registry, context.counters, context.logger)
        self.table = RouteTable(source: routes)
        if routes == "registry" {
            self.loader = RouteRegistryLoader(store: registry, table: self.table, counters: counters, logger: logger)
        } else {
            self.loader = RouteDirectoryLoader(directory: routes, table: self.table, counters: counters, threadPool: context.threadPool, logger: logger)
        }
        self.cache = RegistryCache(directory: registry, registryName: registry.displayName, logger: logger)
        self.client = HTTPServiceClient(eventLoopGroup: context.eventLoopGroup, token: context.token, tls: context.tls, logger: logger)
        self.asyncSteps = AsyncStepQueue(logger: logger)
        self.nodeID = Identifiers.nodeID()
        self.spans = SpanRecorder(
            registry: registry, recorder: self.nodeID, host: ProcessInfo.processInfo.hostName, counters: counters, exporter: context.spanExporter, logger: logger
        )
        let dispatcher = ServiceDispatcher(
            cache: self.cache, balancer: InstanceBalancer(region: context.region), client: self.client, local: local, watchdog: context.watchdog
        )
        self.executor = RouteExecutor(
            table: self.table, dispatcher: dispatcher, asyncSteps: self.asyncSteps, counters: counters, spans: self.spans, sampler: context.sampler,
            dedupe: registry, logger: logger
        )
    }

    /// Long-running parts, in start order; the `ServiceGroup` stops them in reverse, so the
    /// client pool and cache outlive everything that calls through them.
    public var services: [any Service] { [self.spans, self.cache, self.client, self.asyncSteps, self.loader] }
}
