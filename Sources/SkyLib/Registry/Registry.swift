public import Foundation

/// Where nodes find each other: one record per process, heartbeats, and an event log.
///
/// Two backends conform: ``SQLiteRegistry`` (the embedded default, one file shared by the
/// processes of one host) and the MongoDB registry (many hosts). Both pass the same
/// conformance tests. Routers never read the registry on the request path: they read a
/// ``RegistryCache`` that refreshes in the background.
public protocol Registry: Sendable {
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

    /// Appends an event to the cluster's log.
    func record(_ event: RegistryEvent) async throws

    /// The most recent events, newest first.
    func events(limit: Int) async throws -> [RegistryEvent]

    /// A short description for logs (`sqlite:/path`, `mongodb://host/db`), without credentials.
    var displayName: String { get }
}

extension Registry {
    /// The records that match `query`.
    public func nodes(matching query: NodeQuery) async throws -> [NodeRecord] {
        try await self.nodes().filter(query.matches)
    }
}
