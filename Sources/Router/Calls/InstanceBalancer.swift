public import Foundation
import SkyLib
import RouteModel
import Synchronization
public import RegistryKit

/// Chooses which instance of a service gets the next call: least outstanding requests,
/// in-process instances first, the router's own region before others, never one that was
/// just tried or that refused a connection moments ago.
public final class InstanceBalancer: Sendable {
    /// Calls in flight per instance (least outstanding wins), instances left out until a time, and
    /// a round-robin cursor per service for ties.
    private struct State {
        var outstanding: [String: InFlight] = [:]
        var quarantinedUntil: [String: Date] = [:]
        var cursors: [String: Int] = [:]
    }

    /// The router's region, preferred when it has instances.
    public let region: String?
    /// How long an instance that refused a connection is left out locally.
    public let quarantine: TimeInterval
    /// Changed on every call's start and end, from any task.
    private let state = Mutex(State())

    /// Creates an `InstanceBalancer` from its parts.
    public init(region: String? = nil, quarantine: TimeInterval = 3) {
        self.region = region
        self.quarantine = quarantine
    }

    /// Picks one of `instances`.
    /// - Parameters:
    ///   - excluding: node ids tried already for this request; used only when nothing else is left.
    ///   - isLocal: whether a node is hosted in this process (called directly, no socket).
    /// - Returns: the chosen instance, or `nil` when `instances` is empty.
    public func choose(
        from instances: [NodeRecord],
        excluding: Set<String> = [],
        now: Date = Date(),
        isLocal: (String) -> Bool = { _ in false }
    ) -> NodeRecord? {
        guard !instances.isEmpty else { return nil }
        // One instance: every narrowing below would keep it anyway ("never to nothing").
        if instances.count == 1 { return instances[0] }
        return self.state.withLock { state in
            func usable(_ pool: [NodeRecord]) -> [NodeRecord] {
                pool.filter { (state.quarantinedUntil[$0.id].map { $0 <= now } ?? true) }
            }
            // Narrow down step by step, but never to nothing.
            var pool = instances
            for narrower in [
                pool.filter { !excluding.contains($0.id) },
                usable(pool.filter { !excluding.contains($0.id) }),
            ] where !narrower.isEmpty {
                pool = narrower
            }
            let local = pool.filter { isLocal($0.id) }
            if !local.isEmpty {
                pool = local
            } else if let region = self.region {
                let sameRegion = pool.filter { $0.region == region }
                if !sameRegion.isEmpty { pool = sameRegion }
            }
            // Least outstanding; ties broken round-robin so idle instances share the load.
            // The counts are read once: calls end without the lock, so a second read could
            // find no instance at the least count (and nothing to choose from).
            let loads = pool.map { state.outstanding[$0.id]?.count ?? 0 }
            let least = loads.min() ?? 0
            let candidates = zip(pool, loads).filter { $0.1 == least }.map(\.0)
            // One cursor per service, so a route that alternates services still rotates each.
            let cursor = state.cursors[pool[0].service, default: 0] &+ 1
            state.cursors[pool[0].service] = cursor
            return candidates[Int(UInt(bitPattern: cursor) % UInt(candidates.count))]
        }
    }

    /// Counts a call to `nodeID` as started.
    /// - Returns: the instance's count of calls in flight; ``InFlight/finish()`` ends this call,
    ///   without the balancer's lock (one locked update per call rather than two).
    @discardableResult
    public func started(_ nodeID: String) -> InFlight {
        self.state.withLock { state in
            if let inFlight = state.outstanding[nodeID] {
                inFlight.begin()
                return inFlight
            }
            if state.outstanding.count >= Self.idleCountsKept {
                // Instances come and go over a router's life: forget the idle ones' counts.
                state.outstanding = state.outstanding.filter { $0.value.count > 0 }
            }
            let inFlight = InFlight()
            inFlight.begin()  // under the lock, so the pruning above never drops a count in use
            state.outstanding[nodeID] = inFlight
            return inFlight
        }
    }

    /// How many instances' counts are kept before idle ones are forgotten.
    static let idleCountsKept = 1024

    /// Calls in flight to one instance, changed without the balancer's lock.
    public final class InFlight: Sendable {
        private let calls = Atomic<Int>(0)

        /// Calls in flight now.
        public var count: Int { self.calls.load(ordering: .relaxed) }

        func begin() {
            self.calls.wrappingAdd(1, ordering: .relaxed)
        }

        /// Counts the call as finished.
        public func finish() {
            self.calls.wrappingSubtract(1, ordering: .relaxed)
        }
    }

    /// Leaves `nodeID` out for ``quarantine`` seconds, after it refused a connection.
    public func markUnreachable(_ nodeID: String, now: Date = Date()) {
        self.state.withLock { state in
            state.quarantinedUntil = state.quarantinedUntil.filter { $0.value > now }
            state.quarantinedUntil[nodeID] = now.addingTimeInterval(self.quarantine)
        }
    }

    /// Calls in flight to `nodeID`.
    public func outstanding(_ nodeID: String) -> Int {
        self.state.withLock { $0.outstanding[nodeID]?.count ?? 0 }
    }
}
