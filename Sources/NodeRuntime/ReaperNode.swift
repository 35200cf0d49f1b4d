public import Reaper
import RegistryKit
public import ServiceLifecycle
import SkyLib
import RouteModel

/// A node that removes dead nodes from the registry, assembled from its parts: what `sky
/// reaper` starts (and a test starts in-process). The ``Reaper`` (heartbeat TTLs, `/health`
/// probes over the process's TLS, the lease that keeps one active), the node's own record,
/// and the admin endpoints at ``Configuration/admin``.
public struct ReaperNode: Sendable {
    /// What the node runs.
    public struct Configuration: Sendable {
        /// The reaper's passes, lease and probes.
        public var reaper = Reaper.Configuration()
        /// Where `/health`, `/debug/vars` and `/metrics` listen (`port` 0: any free port).
        public var admin = ListenAddress(host: "127.0.0.1", port: 0)

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// What its parts share, its lifecycle among them.
    public let context: NodeContext
    /// The reaper (its state is in the node's stats).
    public let reaper: Reaper
    /// The node's record in the registry, with the address its admin server bound.
    public let presence: ListeningPresence
    /// Where the admin endpoints listen.
    public let admin: ListenAddress

    /// Creates a `ReaperNode` from its parts.
    public init(configuration: Configuration, context: NodeContext) {
        self.context = context
        let nodeID = Identifiers.nodeID()
        var reaping = configuration.reaper
        reaping.ownNodeID = nodeID
        let reaper = Reaper(
            registry: context.registry, configuration: reaping, probe: HTTPHealthProbe(client: context.httpClient, tls: context.tls), counters: context.counters,
            logger: context.logger
        )
        self.reaper = reaper
        self.presence = context.presence(nodeID: nodeID, kind: .reaper, service: "reaper", address: "-", stats: { reaper.stats })
        self.admin = configuration.admin
    }

    /// The node's parts, in start order (the group stops them in reverse).
    public var services: [any Service] {
        [self.presence.presence, self.reaper, self.context.adminServer(at: self.admin, presence: self.presence)]
    }

    /// Runs the node as this process until it shuts down.
    public func run() async throws {
        try await self.context.run(self.services)
    }
}
