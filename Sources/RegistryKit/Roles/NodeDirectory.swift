public import Foundation
import SkyLib

/// The registry's node records: one per process, kept alive by heartbeats.
///
/// Writers are ``NodePresence`` (a node's own record) and the reaper; readers are the
/// ``RegistryCache`` (routers, the dashboard) and `sky nodes`.
public protocol NodeDirectory: Sendable {
    /// Writes `node`, replacing a record with the same id, and removes stale records that
    /// claim the same address (a restarted process is a new node; the old record must not
    /// shadow it).
    func register(_ node: NodeRecord) async throws

    /// Refreshes a node's heartbeat, status and stats.
    /// - Returns: `false` when the record no longer exists (it was reaped), so the caller
    ///   registers again.
    func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool

    /// Removes a node's record.
    func deregister(nodeID: String) async throws

    /// Every node record.
    func nodes() async throws -> [NodeRecord]

    /// Removes a node only if its heartbeat is still older than `before`, so a node that
    /// heartbeated meanwhile survives.
    /// - Returns: whether it was removed.
    func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool
}

extension NodeDirectory {
    /// The records that match `query`.
    public func nodes(matching query: NodeQuery) async throws -> [NodeRecord] {
        try await self.nodes().filter(query.matches)
    }
}
