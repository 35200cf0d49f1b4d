public import Foundation
public import Logging
public import ServiceLifecycle
public import SkyLib

/// Writes this node's counts into the registry's G-Counter (``CountStore``) every
/// `interval`, and once more at graceful shutdown, so the cluster's totals include every
/// request this node answered. Only grow-only counts go (names from `include`); gauges such
/// as in-flight numbers would break the merge.
///
/// A node killed outright (SIGKILL, a power cut) loses at most the counts of its last
/// interval from the totals; a node stopped gracefully loses none.
public final class CountPublisher: Service, Sendable {
    private let store: any CountStore
    private let nodeID: String
    private let counters: Counters
    private let interval: Duration
    private let include: @Sendable (String) -> Bool
    private let logger: Logger
    private let last = Locked<[String: Int64]>([:])

    /// Route counts: `route.NAME-processed`, `-errors` and the out-of-band ones, not `-inflight`.
    public static let routeCounts: @Sendable (String) -> Bool = { name in name.hasPrefix("route.") && !name.hasSuffix("-inflight") }

    /// Creates a `CountPublisher` for node `nodeID`.
    public init(
        store: any CountStore, nodeID: String, counters: Counters, interval: Duration = .seconds(1),
        include: @escaping @Sendable (String) -> Bool = CountPublisher.routeCounts, logger: Logger
    ) {
        self.store = store
        self.nodeID = nodeID
        self.counters = counters
        self.interval = interval
        self.include = include
        self.logger = logger
    }

    /// Writes the counts that changed since the last write; answers whether it wrote.
    @discardableResult
    public func publish(at now: Date = Date()) async throws -> Bool {
        let counts = self.counters.snapshot().filter { self.include($0.key) }
        let changed = self.last.withLock { last in counts.filter { last[$0.key] != $0.value } }
        guard !changed.isEmpty else { return false }
        try await self.store.mergeCounts(nodeID: self.nodeID, counts: changed, at: now)
        self.last.withLock { last in last.merge(changed) { $1 } }
        return true
    }

    /// Every interval until graceful shutdown, then a last write.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                do {
                    try await self.publish()
                } catch {
                    self.logger.debug("counts not written; next interval tries again", metadata: ["error": "\(error)"])
                }
            }
        }
        do {
            try await self.publish()
        } catch {
            self.logger.warning("last counts not written at shutdown", metadata: ["error": "\(error)"])
        }
    }
}
