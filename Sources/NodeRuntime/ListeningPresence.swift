import Logging
public import RegistryKit
import SkyLib
import RouteModel

/// A node's presence in the registry whose address is the one its listener bound: asked for
/// port 0, the record says `HOST:0` until the server runs, then the real port.
public final class ListeningPresence: Sendable {
    /// Registers, heartbeats and deregisters the node: run it in the process's group.
    public let presence: NodePresence
    private let bound = Locked<String?>(nil)
    private let fallback: String

    init(
        registry: any PresenceStore, nodeID: String, kind: NodeKind, service: String, region: String, environment: String, address fallback: String,
        control: NodeControl, stats: @escaping @Sendable () -> [String: Int64], logger: Logger
    ) {
        self.fallback = fallback
        let bound = self.bound
        self.presence = NodePresence(registry: registry, nodeID: nodeID, control: control, logger: logger) { status in
            NodeRecord(kind: kind, service: service, region: region, environment: environment, address: bound.withLock { $0 } ?? fallback, status: status, stats: stats())
        }
    }

    /// The node's id in the registry.
    public var nodeID: String { self.presence.nodeID }

    /// The address in the record now.
    public var address: String { self.bound.withLock { $0 } ?? self.fallback }

    /// Notes the address the listener bound and, when it differs from the one registered,
    /// writes the record again. Call it from the listener's `onServerRunning`.
    public func listening(at address: String) async {
        self.bound.withLock { $0 = address }
        if address != self.fallback { await self.presence.rewrite() }
    }
}
