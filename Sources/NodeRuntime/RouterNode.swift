import AdminHTTP
import Foundation
import Initiators
public import Reaper
import RegistryKit
import Routing
public import ServiceLifecycle
public import Services
import SkyLib
public import RouteModel
import TLS

/// A node that runs routes, assembled from its parts: what `sky run`, `sky router` and
/// `sky initiator` start, and what a test starts in-process.
///
/// Always: the router (``RouterStack``), the node's presence in the registry, and one
/// listener: the HTTP initiator (`POST /routes/NAME` and the admin endpoints) when
/// ``Configuration/http`` is set, else the admin endpoints alone at ``Configuration/admin``.
/// As asked: built-in services hosted in-process (called without a socket), the initiators
/// routes declare under `from:`, and a reaper. Listeners and initiators start only once the
/// hosted services are registered and the router's cache has them, so the first request finds them.
public struct RouterNode: Sendable {
    /// What the node runs.
    public struct Configuration: Sendable {
        /// A folder of route files (reloaded live), or `registry` for the routes pushed there.
        public var routes: String = "Routes"
        /// Where the HTTP initiator listens (`port` 0: any free port); `nil`: no HTTP initiator.
        public var http: ListenAddress?
        /// Where the admin endpoints listen when there is no HTTP initiator.
        public var admin = ListenAddress(host: "127.0.0.1", port: 0)
        /// Built-in services to host in this process (``BuiltinServices/names``).
        public var builtinServices: [String] = []
        /// Whether the initiators routes declare (files, CSV, STOMP) run here.
        public var runsSourceInitiators = false
        /// Whether a reaper runs here (`sky run`: the one-process cluster prunes its own dead).
        public var runsReaper = false

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// What the node tells once its listener runs.
    public struct Ready: Sendable {
        /// `HOST:PORT` of the listener.
        public var address: String
        /// The routes served.
        public var routes: [RouteSummary]
        /// The hosted services: name and address.
        public var services: [(name: String, address: String)]
        /// The registry, without credentials.
        public var registry: String
    }

    /// What the node runs.
    public let configuration: Configuration
    /// What its parts share, its lifecycle among them.
    public let context: NodeContext
    /// The router: route table, loader, cache, client, executor.
    public let stack: RouterStack
    /// The built-in services hosted here.
    public let hosts: [ServiceHost]
    /// The node's record in the registry, with the address its listener bound.
    public let presence: ListeningPresence
    /// The reaper, when this node runs one (its state is in the node's stats).
    public let reaper: Reaper?
    /// Keeps failed inputs in the registry and puts back those asked to be redriven.
    public let failedWork: FailedWork
    private let onReady: @Sendable (Ready) async -> Void

    /// - Parameter onReady: called once the listener runs (the `sky` tool prints its summary).
    public init(configuration: Configuration, context: NodeContext, onReady: @escaping @Sendable (Ready) async -> Void = { _ in }) {
        self.configuration = configuration
        self.context = context
        self.onReady = onReady
        var hostConfiguration = ServiceHost.Configuration()
        hostConfiguration.region = context.region
        hostConfiguration.environment = context.environment
        hostConfiguration.token = context.token
        hostConfiguration.tls = context.tls
        hostConfiguration.limits = context.httpLimits
        // `sky stop` of one hosted service stops that host only; the whole process stops with
        // its router node.
        hostConfiguration.commands = .embedded(in: "`sky run` pid \(ProcessInfo.processInfo.processIdentifier)")
        let hosts = configuration.builtinServices.compactMap { name in
            BuiltinServices.definition(named: name, logger: context.logger).map {
                ServiceHost(
                    definition: $0, configuration: hostConfiguration, registry: context.registry, counters: context.counters,
                    eventLoopGroup: context.eventLoopGroup, watchdog: context.watchdog, logger: context.logger
                )
            }
        }
        self.hosts = hosts
        let local = hosts.isEmpty ? nil : LocalServices(handlers: Dictionary(uniqueKeysWithValues: hosts.map { ($0.nodeID, $0.inProcessHandler) }))
        let stack = RouterStack(routes: configuration.routes, local: local, context: context)
        self.stack = stack
        self.failedWork = FailedWork(store: context.registry, nodeID: stack.nodeID, counters: context.counters, runner: stack.executor, logger: context.logger)
        let reaper = configuration.runsReaper
            ? Reaper(
                registry: context.registry, configuration: { var reaping = Reaper.Configuration(); reaping.ownNodeID = stack.nodeID; return reaping }(),
                probe: HTTPHealthProbe(client: context.httpClient, tls: context.tls), counters: context.counters, logger: context.logger
            ) : nil
        self.reaper = reaper
        let stats: @Sendable () -> [String: Int64] = {
            // Breakers in the node's stats: `sky services` and the dashboard show them cluster-wide.
            var stats: [String: Int64] = ["routes": Int64(stack.table.summaries.count)]
            for (service, state) in stack.executor.breakerStates() { stats["breaker.\(service)"] = state }
            return stats.merging(reaper?.stats ?? [:]) { first, _ in first }
        }
        if let http = configuration.http {
            self.presence = context.presence(nodeID: stack.nodeID, kind: .router, service: "router", address: http.description, stats: stats)
        } else {
            self.presence = context.presence(nodeID: stack.nodeID, kind: .initiator, service: "initiator", address: "-", stats: stats)
        }
    }

    /// The node's parts, in start order (the group stops them in reverse).
    public var services: [any Service] {
        let stack = self.stack
        let hosts = self.hosts
        // Initiators start once the hosted services are registered and in the router's cache.
        let ready: @Sendable () async throws -> Void = {
            for host in hosts { _ = try await host.waitUntilReady() }
            await stack.cache.refresh()
        }
        var services = stack.services
        if !hosts.isEmpty { services.append(Concurrently(services: hosts)) }
        if let reaper = self.reaper { services.append(reaper) }
        services.append(self.presence.presence)
        // Before the initiators and the listener, so it stops after them: its last write at
        // shutdown holds every request they answered.
        services.append(CountPublisher(store: self.context.registry, nodeID: stack.nodeID, counters: self.context.counters, logger: self.context.logger))
        // Also before the intake: what fails while it drains is still written to the registry.
        services.append(self.failedWork)
        // The listener and the initiators drain side by side at shutdown (each for at most the
        // drain limit), not one after the other.
        var intake: [any Service] = [AfterReady(prepare: ready, service: Drained(self.listener, limit: self.context.drainLimit, logger: self.context.logger))]
        if self.configuration.runsSourceInitiators {
            var supervisor = InitiatorSupervisor(
                table: stack.table,
                makeInitiator: InitiatorSupervisor.factory(
                    runner: stack.executor, counters: self.context.counters, tls: self.context.tls, environment: self.context.variables,
                    eventLoopGroup: self.context.eventLoopGroup, threadPool: self.context.threadPool, failures: self.failedWork, logger: self.context.logger
                ),
                logger: self.context.logger
            )
            supervisor.drainLimit = self.context.drainLimit
            supervisor.failedWork = self.failedWork
            intake.append(AfterReady(prepare: ready, service: supervisor))
        }
        services.append(Concurrently(services: intake))
        return services
    }

    /// The HTTP initiator, or the admin endpoints alone.
    private var listener: any Service {
        let stack = self.stack
        var admin = AdminEndpoints(
            counters: self.context.counters,
            extraVars: {
                var vars: [String: JSONValue] = ["asyncInFlight": .int(Int64(stack.asyncSteps.count))]
                for (service, state) in stack.executor.breakerStates() { vars["breaker.\(service)-state"] = .int(state) }
                return vars
            },
            stats: { stack.executor.stats() }
        )
        let onServerRunning: @Sendable (String) async -> Void = { [presence = self.presence, hosts = self.hosts, onReady = self.onReady, registry = self.context.registry] address in
            await presence.listening(at: address)
            await onReady(Ready(
                address: address, routes: stack.table.summaries, services: hosts.map { ($0.definition.name, $0.address ?? "?") },
                registry: registry.displayName
            ))
        }
        guard let http = self.configuration.http else {
            return AdminServer(
                host: self.configuration.admin.host, port: self.configuration.admin.port, token: self.context.token, endpoints: admin,
                tls: self.context.tls, limits: self.context.httpLimits, eventLoopGroup: self.context.eventLoopGroup, logger: self.context.logger,
                onServerRunning: onServerRunning
            )
        }
        // Routers take registrations over HTTP (PUT /v1/nodes/ID) beside their routes.
        admin.more = [RegistrationEndpoints(registry: self.context.registry)]
        var configuration = HTTPInitiator.Configuration()
        configuration.host = http.host
        configuration.port = http.port
        configuration.token = self.context.token
        configuration.tls = self.context.tls
        configuration.limits = self.context.httpLimits
        return HTTPInitiator(
            configuration: configuration, runner: stack.executor, admin: admin, eventLoopGroup: self.context.eventLoopGroup, failures: self.failedWork,
            logger: self.context.logger, onServerRunning: onServerRunning
        )
    }

    /// Loads the routes, then runs the node as this process until it shuts down.
    public func run() async throws {
        await self.stack.loader.reloadNow()
        try await self.context.run(self.services)
    }
}

/// Where a listener binds: `HOST:PORT`, port 0 for any free one.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The interface (`127.0.0.1`, `0.0.0.0`, `::1` …).
    public var host: String
    /// The port; 0 picks a free one.
    public var port: Int

    /// Creates a `ListenAddress` from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(self.host):\(self.port)" }
}
