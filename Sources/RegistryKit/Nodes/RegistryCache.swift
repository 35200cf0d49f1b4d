public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import SkyLib

/// A local, always-ready copy of the registry's nodes, refreshed in the background.
///
/// Routers pick instances from here, so the request path never waits on the registry. When the
/// registry cannot be reached the last good copy keeps serving; the outage is logged once when
/// it starts and once when it ends.
public final class RegistryCache: Service, Sendable {
    private struct State {
        var nodes: [NodeRecord] = []
        var byService: [String: [NodeRecord]] = [:]
        var generation: Int = 0
        var lastRefresh: Date?
        var failing = false
        /// After an outage, until this time expiry is judged at `graceReference` (the last
        /// answer before the outage): the nodes' heartbeats are landing again but the first
        /// copies still hold the stale ones.
        var graceUntil: Date?
        var graceReference: Date?
        /// The freshest heartbeat in the copy, and the shortest TTL (above zero) of its nodes:
        /// when even the freshest is older than half that TTL, heartbeats are not landing.
        var newestHeartbeat: Date?
        var shortestTTL: Double?
        var watchers: [UInt64: Watcher] = [:]
        var nextWatcher: UInt64 = 0
    }

    private struct Watcher {
        var query: NodeQuery
        var continuation: AsyncStream<NodeChange>.Continuation
    }

    /// How long after an outage expiry is still judged by the last copy before it.
    static let recoveryGrace: TimeInterval = 5

    /// Where the nodes are read: the registry's node directory, the only role the cache calls.
    public let directory: any NodeDirectory
    /// The registry's name for logs (``Registry/displayName``: no credentials).
    public let registryName: String
    /// How often the copy is refreshed.
    public let interval: Duration
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates a `RegistryCache` from its parts.
    /// - Parameters:
    ///   - directory: the registry's node records.
    ///   - registryName: how logs name the registry.
    ///   - interval: how often ``run()`` refreshes the copy; a quarter second, so a new
    ///     instance is routed to well within a heartbeat.
    ///   - logger: where failed refreshes are logged (once per outage, not per refresh).
    public init(directory: any NodeDirectory, registryName: String, interval: Duration = .milliseconds(250), logger: Logger) {
        self.directory = directory
        self.registryName = registryName
        self.interval = interval
        self.logger = logger
    }

    /// Every node in the last good copy.
    public var nodes: [NodeRecord] { self.state.withLock { $0.nodes } }

    /// Bumped on every refresh that changed something; lets callers skip unchanged work.
    public var generation: Int { self.state.withLock { $0.generation } }

    /// When the copy was last refreshed successfully.
    public var lastRefresh: Date? { self.state.withLock { $0.lastRefresh } }

    /// Whether the last refresh failed (the copy may be stale).
    public var isStale: Bool { self.state.withLock { $0.failing } }

    /// Ready, unexpired service instances of `service`, filtered by a version selector.
    ///
    /// Expiry is judged at the time the registry last answered (plus a second), not at `now`:
    /// while the registry is down or hung no node can heartbeat, so by the wall clock every
    /// node would soon look dead. The last good copy is the best knowledge there is; an
    /// instance that really died meanwhile refuses connections and the balancer leaves it out.
    /// For a few seconds after an outage the same holds, judged at the last copy before it,
    /// while the nodes' delayed heartbeats land.
    public func instances(of service: String, version: String? = nil, now: Date = Date()) -> [NodeRecord] {
        let (candidates, reference) = self.state.withLock { state in (state.byService[service] ?? [], Self.expiryReference(state, now: now)) }
        let selector = version.flatMap(VersionSelector.init)
        let usable = { (node: NodeRecord) in
            node.status == .ready && !node.isExpired(at: reference) && (selector?.matches(node.version) ?? true)
        }
        // Usually every instance is usable: hand back the cached array itself rather than a
        // filtered copy (this runs for every call a router makes).
        return candidates.allSatisfy(usable) ? candidates : candidates.filter(usable)
    }

    /// Every ready, unexpired node of any kind, with expiry judged as in
    /// ``instances(of:version:now:)``, and for each the seconds left before it would expire.
    public func readyNodes(now: Date = Date()) -> [(node: NodeRecord, secondsLeft: Double)] {
        let (nodes, reference) = self.state.withLock { state in (state.nodes, Self.expiryReference(state, now: now)) }
        return nodes.compactMap { node in
            guard node.status == .ready, !node.isExpired(at: reference) else { return nil }
            return (node, node.ttl - reference.timeIntervalSince(node.heartbeatAt))
        }
    }

    /// The time at which expiry is judged: the registry's last answer (plus a second), or
    /// the last copy before an outage during the grace after it.
    ///
    /// And never more than half the shortest TTL after the freshest heartbeat in the copy: a
    /// registry that answers reads but whose writes stall (its disk, or an SQLite file whose
    /// write lock is held) lands no heartbeat at all, this router's own included, and judged by
    /// the wall clock every node would expire at once. `sky drill`'s `suspend:registry` found
    /// it: a 3 s write stall failed a third of the requests with `no_instance`. In a healthy
    /// cluster some node (this one) heartbeats well within half a TTL, so this never applies;
    /// a node that died before the stall still expires, its heartbeat older than the others'.
    private static func expiryReference(_ state: State, now: Date) -> Date {
        let reference = Self.answerReference(state, now: now)
        return Self.stalledReference(state, at: reference) ?? reference
    }

    /// The registry's last answer (plus a second), or the grace's reference during a grace.
    private static func answerReference(_ state: State, now: Date) -> Date {
        if let until = state.graceUntil, let before = state.graceReference, now < until {
            return before.addingTimeInterval(1)
        }
        return state.lastRefresh.map { min(now, $0.addingTimeInterval(1)) } ?? now
    }

    /// Half the shortest TTL after the freshest heartbeat, when `reference` is later than that:
    /// no heartbeat is landing.
    private static func stalledReference(_ state: State, at reference: Date) -> Date? {
        guard let newest = state.newestHeartbeat, let ttl = state.shortestTTL, reference.timeIntervalSince(newest) > ttl / 2 else { return nil }
        return newest.addingTimeInterval(ttl / 2)
    }

    /// Nodes in the copy that match `query`.
    public func nodes(matching query: NodeQuery) -> [NodeRecord] {
        self.nodes.filter(query.matches)
    }

    /// The nodes matching `query` now, then every change to that set as the copy refreshes:
    /// `.added` for each current match first, then `.added`, `.removed` and `.changed` (status,
    /// version, address, region or host; heartbeats alone are not changes). A node that stops
    /// matching (say it starts draining under a `status: .ready` query) is `.removed`.
    /// The sequence ends when the consumer stops iterating.
    public func changes(matching query: NodeQuery) -> AsyncStream<NodeChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: NodeChange.self)
        let id = self.state.withLock { state -> UInt64 in
            let id = state.nextWatcher
            state.nextWatcher += 1
            for node in state.nodes where query.matches(node) { continuation.yield(.added(node)) }
            state.watchers[id] = Watcher(query: query, continuation: continuation)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sends each watcher the changes between two copies that concern its query.
    private static func notify(_ watchers: some Sequence<Watcher>, old: [NodeRecord], new: [NodeRecord]) {
        let before = Dictionary(old.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for watcher in watchers {
            let query = watcher.query
            for node in new {
                let now = query.matches(node)
                guard let previous = before[node.id] else {
                    if now { watcher.continuation.yield(.added(node)) }
                    continue
                }
                let was = query.matches(previous)
                switch (was, now) {
                case (false, true): watcher.continuation.yield(.added(node))
                case (true, false): watcher.continuation.yield(.removed(node))
                case (true, true) where !previous.hasSameShape(as: node): watcher.continuation.yield(.changed(from: previous, to: node))
                default: break
                }
            }
            for node in old where after[node.id] == nil && query.matches(node) {
                watcher.continuation.yield(.removed(node))
            }
        }
    }

    /// Reads the registry once now.
    /// - Returns: whether the read succeeded.
    @discardableResult
    public func refresh() async -> Bool {
        do {
            let nodes = try await self.directory.nodes()
            let recovered = self.state.withLock { state -> Bool in
                if state.nodes != nodes {
                    if !state.watchers.isEmpty { Self.notify(state.watchers.values, old: state.nodes, new: nodes) }
                    state.nodes = nodes
                    state.byService = Dictionary(grouping: nodes.filter { $0.kind == .service }, by: \.service)
                    state.generation += 1
                }
                let now = Date()
                // The stall's reference before this copy: when heartbeats land again they do not
                // all land in one copy, so those still queued are judged by it for a grace.
                let stalledAt = Self.stalledReference(state, at: Self.answerReference(state, now: now))
                state.newestHeartbeat = nodes.lazy.filter { $0.status == .ready }.map(\.heartbeatAt).max()
                state.shortestTTL = nodes.lazy.map(\.ttl).filter { $0 > 0 }.min()
                // A grace judges at the earliest reference that applies: a stall that ends
                // in the same copy as a slow read must not be judged by the later one.
                func grace(from reference: Date) {
                    if let until = state.graceUntil, let current = state.graceReference, now < until, current < reference { return }
                    state.graceReference = reference
                    state.graceUntil = now.addingTimeInterval(Self.recoveryGrace)
                }
                if let stalledAt, Self.stalledReference(state, at: now) == nil { grace(from: stalledAt.addingTimeInterval(-1)) }
                // A long gap since the last good copy was an outage (failed or hung reads).
                if let previous = state.lastRefresh, now.timeIntervalSince(previous) > max(2, 8 * self.interval.seconds) { grace(from: previous) }
                state.lastRefresh = now
                defer { state.failing = false }
                return state.failing
            }
            if recovered {
                self.logger.notice("registry reachable again; cache refreshed", metadata: ["registry": "\(self.registryName)"])
            }
            return true
        } catch {
            // Shutting down (the read was cancelled) is not an unreachable registry.
            if Task.isCancelled { return false }
            let first = self.state.withLock { state -> Bool in
                defer { state.failing = true }
                return !state.failing
            }
            if first {
                self.logger.error(
                    "registry unreachable; serving from the cached copy until it is back",
                    metadata: ["registry": "\(self.registryName)", "error": "\(error)"]
                )
            }
            return false
        }
    }

    /// Refreshes every ``interval`` until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.refresh()
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
