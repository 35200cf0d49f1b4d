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

    /// Stores trace spans (written in batches by ``SpanRecorder``). Old spans are pruned by
    /// the backend: the newest 100,000 are kept (SQLite), or a day's worth (MongoDB).
    func recordSpans(_ spans: [Span]) async throws

    /// Every stored span of one trace, oldest first.
    func spans(traceID: String) async throws -> [Span]

    /// Takes or renews lease `name` for `holder` until `now + duration`.
    /// - Returns: `false` when another holder has the lease and it has not expired.
    func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool

    /// Routes pushed to the registry (`sky routes push`), for routers started with `--routes registry`.
    func storedRoutes() async throws -> [StoredRoute]

    /// Stores routes: a route whose text changed gets the next revision, an unchanged one keeps
    /// its revision; with `prune`, stored routes not in `routes` are removed.
    /// - Returns: the stored routes after the change.
    @discardableResult
    func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute]

    /// Stores commands for nodes, pending (``NodeCommand``). Commands older than a day are pruned.
    func sendCommands(_ commands: [NodeCommand]) async throws

    /// Claims the pending, unexpired commands addressed to `targets` whose action is in
    /// `actions`: each becomes `acknowledged` by `actor`. Claiming is atomic: when several
    /// processes claim at once, each command goes to exactly one of them.
    /// - Returns: the commands claimed, as stored after the claim.
    func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand]

    /// Moves command `id` from state `from` to `to` with `result`, only if it is still in `from`
    /// (so an expired command is never finished, nor a claimed one expired).
    /// - Returns: whether it moved.
    func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool

    /// The stored commands with these ids (unknown ids are left out).
    func commands(ids: [String]) async throws -> [NodeCommand]

    /// A short description for logs (`sqlite:/path`, `mongodb://host/db`), without credentials.
    var displayName: String { get }
}

/// A route file kept in the registry so one push reaches every router.
public struct StoredRoute: Sendable, Hashable {
    /// The route's name (unique).
    public var name: String
    /// The route file's text.
    public var yaml: String
    /// The file it was pushed from, for messages.
    public var file: String
    /// Bumped on every pushed change.
    public var revision: Int
    public var updatedAt: Date

    public init(name: String, yaml: String, file: String, revision: Int = 0, updatedAt: Date = Date()) {
        self.name = name
        self.yaml = yaml
        self.file = file
        self.revision = revision
        self.updatedAt = updatedAt
    }
}

extension Registry {
    /// The records that match `query`.
    public func nodes(matching query: NodeQuery) async throws -> [NodeRecord] {
        try await self.nodes().filter(query.matches)
    }
}
