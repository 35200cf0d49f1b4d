import Foundation
import Logging
import NIOCore
import Synchronization

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit
import RegistrySQLite
import SkyTestSupport

/// An in-memory stand-in for the wire, used beside the end-to-end tests that call real
/// service processes: each service's behaviour is a closure, and every call is recorded.
final class ScriptedClient: ServiceClient {
    typealias Behaviour = @Sendable (RequestEnvelope, NodeRecord, Int) async throws(SkyError) -> ServiceResponse

    struct Call: Sendable {
        var request: RequestEnvelope
        var instance: NodeRecord
    }

    let behaviours: [String: Behaviour]
    let calls = Mutex<[Call]>([])

    init(_ behaviours: [String: Behaviour]) {
        self.behaviours = behaviours
    }

    func call(_ request: RequestEnvelope, instance: NodeRecord, deadline: NIODeadline?) async throws(SkyError) -> ServiceResponse {
        let number = self.calls.withLock { calls in
            calls.append(Call(request: request, instance: instance))
            return calls.filter { $0.instance.service == instance.service }.count
        }
        guard let behaviour = self.behaviours[instance.service] else {
            throw SkyError(.serviceError, "no behaviour for \(instance.service)")
        }
        return try await behaviour(request, instance, number)
    }

    func calls(to service: String) -> [Call] {
        self.calls.withLock { $0.filter { $0.instance.service == service } }
    }
}

/// Handlers hosted "in process" for the local-call path.
struct LocalHandlers: LocalServiceDirectory {
    let handlers: [String: any ServiceHandler]
    func handler(forNode nodeID: String) -> (any ServiceHandler)? { self.handlers[nodeID] }
}

struct ClosureHandler: ServiceHandler {
    var completesPromptly = false
    let body: @Sendable (RequestEnvelope) async throws -> ServiceResponse
    func handle(_ request: RequestEnvelope) async throws -> ServiceResponse { try await self.body(request) }
}

/// A router wired from real parts (SQLite registry, cache, balancer, executor, async queue)
/// with a scripted client at the wire.
struct RouterHarness {
    let registry: SQLiteRegistry
    let cache: RegistryCache
    let table = RouteTable()
    let counters = Counters()
    let asyncSteps: AsyncStepQueue
    /// Calls services directly, as a service composing others would.
    let caller: ServiceCaller
    let executor: RouteExecutor
    let balancer = InstanceBalancer(region: "eu")

    /// - Parameters:
    ///   - dedupe: what stands between the executor and the registry's dedupe role (a store
    ///     that fails on cue, say); the registry itself unless given.
    init(
        client: any ServiceClient, local: (any LocalServiceDirectory)? = nil, asyncLimit: Int = 16, dedupeClaimLife: Duration = .seconds(10),
        dedupe: (any DedupeStore) -> any DedupeStore = { $0 }
    ) throws {
        let logger = Logger(label: "router-test")
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-router-\(UUID().uuidString)/r.sqlite")
        self.cache = RegistryCache(directory: self.registry, registryName: self.registry.displayName, logger: logger)
        self.asyncSteps = AsyncStepQueue(limit: asyncLimit, logger: logger)
        let dispatcher = ServiceDispatcher(cache: self.cache, balancer: self.balancer, client: client, local: local, watchdog: DeadlineWatchdog(eventLoop: TestIO.eventLoopGroup.any()))
        self.caller = ServiceCaller(dispatcher: dispatcher)
        self.executor = RouteExecutor(
            table: self.table, dispatcher: dispatcher, asyncSteps: self.asyncSteps, counters: self.counters, dedupe: dedupe(self.registry),
            dedupeClaimLife: dedupeClaimLife, logger: logger
        )
    }

    /// Registers a ready instance of `service` and returns its node.
    @discardableResult
    func addInstance(_ service: String, id: String = Identifiers.nodeID(), region: String = "eu", port: Int = Int.random(in: 20000...60000)) async throws -> NodeRecord {
        // These nodes never heartbeat: a long TTL keeps them alive however slowly the test runs.
        let node = NodeRecord(id: id, kind: .service, service: service, region: region, address: "127.0.0.1:\(port)", status: .ready, ttl: 3600)
        try await self.registry.register(node)
        await self.cache.refresh()
        return node
    }

    func install(_ yaml: String) throws {
        self.table.install(try RouteParser.parse(yaml: yaml, file: "test.yaml"), file: "test.yaml")
    }

    /// Runs `body` while the async-step queue runs.
    func withRunning<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.asyncSteps.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    func run(_ route: String, _ payload: JSONValue) async throws(SkyError) -> RouteResult {
        try await self.executor.run(RequestEnvelope(route: route, payload: payload))
    }
}


/// Tests open a gate to let blocked work finish.
typealias Gate = Latch
