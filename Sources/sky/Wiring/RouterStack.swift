import Foundation
import Logging
import Routing
import ServiceLifecycle
import SkyLib

/// The pieces of a router, built once and shared by `sky run` and `sky router`.
struct RouterStack {
    let table: RouteTable
    let loader: any RouteLoading
    let cache: RegistryCache
    let client: HTTPServiceClient
    let asyncSteps: AsyncStepQueue
    let executor: RouteExecutor
    /// This process's node id, shared by its registry record and the spans it records.
    let nodeID: String
    let spans: SpanRecorder

    /// - Parameter routes: a folder of route files, or `registry` for routes pushed there.
    init(routes: String, registry: any Registry, region: String, local: (any LocalServiceDirectory)?, counters: Counters, token: String?, logger: Logger) {
        self.table = RouteTable()
        if routes == "registry" {
            self.loader = RouteRegistryLoader(registry: registry, table: self.table, counters: counters, logger: logger)
        } else {
            self.loader = RouteDirectoryLoader(directory: routes, table: self.table, counters: counters, logger: logger)
        }
        self.cache = RegistryCache(registry: registry, logger: logger)
        self.client = HTTPServiceClient(token: token, logger: logger)
        self.asyncSteps = AsyncStepQueue(logger: logger)
        self.nodeID = Identifiers.nodeID()
        self.spans = SpanRecorder(registry: registry, recorder: self.nodeID, host: ProcessInfo.processInfo.hostName, counters: counters, logger: logger)
        let dispatcher = ServiceDispatcher(cache: self.cache, balancer: InstanceBalancer(region: region), client: self.client, local: local)
        self.executor = RouteExecutor(
            table: self.table, dispatcher: dispatcher, asyncSteps: self.asyncSteps, counters: counters, spans: self.spans, logger: logger
        )
    }

    /// Long-running parts, in start order; the `ServiceGroup` stops them in reverse, so the
    /// client pool and cache outlive everything that calls through them.
    var services: [any Service] { [self.spans, self.cache, self.client, self.asyncSteps, self.loader] }
}

/// Handlers hosted in this process, by node id: the router calls them without a socket.
struct LocalServices: LocalServiceDirectory {
    let handlers: [String: any ServiceHandler]

    func handler(forNode nodeID: String) -> (any ServiceHandler)? {
        self.handlers[nodeID]
    }
}

/// Runs `prepare` before `service`, for parts that must not start before others are ready
/// (the HTTP initiator waits until local services are registered and the cache has them).
struct AfterReady: Service {
    let prepare: @Sendable () async throws -> Void
    let service: any Service

    func run() async throws {
        try await self.prepare()
        try await self.service.run()
    }
}

/// Runs services side by side as one: graceful shutdown reaches all of them at once, so the
/// services `sky run` hosts drain together instead of one after another.
struct Concurrently: Service {
    let services: [any Service]

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for service in self.services {
                group.addTask { try await service.run() }
            }
        }
    }
}
