public import Foundation
public import Logging
public import ServiceLifecycle
public import SkyLib
import Synchronization
public import RegistryKit

/// Removes nodes that died, and records who, why and when.
///
/// A node is dead when its heartbeat is older than its TTL, or when its `/health` went
/// unanswered for ``Configuration/probeFailures`` probes in a row (a process that hangs but
/// whose heartbeat task still runs, or a node added by hand that never heartbeats).
///
/// Several reapers may run; a lease in the registry makes exactly one active, and another
/// takes over within one lease duration and one pass when it dies.
///
/// Self-preservation: when one pass would remove more than half of the nodes, the reaper
/// assumes that it, not they, is cut off (a registry hiccup, a paused VM), removes nothing,
/// and says so loudly. Eureka does the same, but waits minutes; this reaper acts every pass.
public final class Reaper: Service, Sendable {
    /// How the reaper works.
    public struct Configuration: Sendable {
        /// How often the registry is scanned.
        public var interval: Duration = .milliseconds(500)
        /// Most of the nodes one pass may remove before self-preservation stops it.
        public var maxFraction: Double = 0.5
        /// Unanswered `/health` probes in a row that make a node dead.
        public var probeFailures: Int = 3
        /// How long the active reaper's lease lasts without renewal; a standby takes over
        /// after it.
        public var leaseDuration: TimeInterval = 3
        /// This reaper's id in the lease.
        public var holder: String = Identifiers.nodeID()
        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// Where nodes are read and removed, events recorded and the lease taken.
    public let registry: any NodeDirectory & EventLog & LeaseStore
    /// Its pass interval, lease and probe settings.
    public let configuration: Configuration
    private let probe: (any HealthProbe)?
    private let counters: Counters
    private let logger: Logger
    private let failedProbes = Mutex<[String: Int]>([:])
    private let active = Mutex<Bool?>(nil)

    /// - Parameter probe: how nodes are probed; `nil` to rely on heartbeats alone.
    public init(
        registry: any NodeDirectory & EventLog & LeaseStore,
        configuration: Configuration = Configuration(),
        probe: (any HealthProbe)? = HTTPHealthProbe(),
        counters: Counters,
        logger: Logger
    ) {
        self.registry = registry
        self.configuration = configuration
        self.probe = probe
        self.counters = counters
        self.logger = logger
    }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        /// Nodes removed.
        public var reaped: [String] = []
        /// Whether self-preservation held the pass back.
        public var restrained = false
    }

    /// Whether this reaper holds the lease (`nil` before the first try).
    public var isActive: Bool? { self.active.withLock { $0 } }

    /// Scans once: probes live-looking nodes, then removes expired and unresponsive ones.
    @discardableResult
    public func reapOnce(now: Date = Date()) async throws -> Pass {
        let nodes = try await self.registry.nodes()
        var dead: [(node: NodeRecord, why: String)] = nodes.filter { $0.isExpired(at: now) }.map { node in
            (node, String(
                format: "no heartbeat for %.1fs (ttl %.1fs); last seen at %@, pid %d on %@",
                now.timeIntervalSince(node.heartbeatAt), node.ttl, node.address, node.pid, node.host
            ))
        }
        dead += await self.unresponsive(nodes.filter { !$0.isExpired(at: now) })
        var pass = Pass()
        guard !dead.isEmpty else { return pass }
        // A lone node dying is normal; many at once more likely means we are the ones cut off.
        if nodes.count > 2, Double(dead.count) > Double(nodes.count) * self.configuration.maxFraction {
            pass.restrained = true
            self.counters.add("reaper-restrained")
            self.logger.critical(
                "self-preservation: \(dead.count) of \(nodes.count) nodes look dead at once; assuming this reaper or the registry is cut off, removing none"
            )
            return pass
        }
        for (node, why) in dead {
            // Expired nodes go only if still expired (a heartbeat may have landed meanwhile);
            // unresponsive ones go whatever their heartbeat says.
            let cutoff = node.isExpired(at: now) ? now.addingTimeInterval(-node.ttl) : .distantFuture
            guard try await self.registry.reap(nodeID: node.id, heartbeatBefore: cutoff) else { continue }
            _ = self.failedProbes.withLock { $0.removeValue(forKey: node.id) }
            do {
                try await self.registry.record(RegistryEvent(at: now, kind: "reaped", nodeID: node.id, service: node.service, message: why))
            } catch {
                // The node is gone either way; say that its event is missing rather than lose it silently.
                self.counters.add("reaper-event-errors")
                self.logger.error("reaped a node but could not record the event", metadata: ["node": "\(node.id)", "error": "\(error)"])
            }
            self.counters.add("reaper-reaped")
            self.logger.notice("reaped node", metadata: ["node": "\(node.id)", "service": "\(node.service)", "why": "\(why)"])
            pass.reaped.append(node.id)
        }
        return pass
    }

    /// Probes every node that has an address, in parallel, and answers those that have now
    /// missed ``Configuration/probeFailures`` probes in a row.
    private func unresponsive(_ nodes: [NodeRecord]) async -> [(node: NodeRecord, why: String)] {
        guard let probe else { return [] }
        let probed = nodes.filter { $0.address.contains(":") }
        let results = await withTaskGroup(of: (NodeRecord, Bool).self) { group in
            for node in probed { group.addTask { (node, await probe.isAlive(node)) } }
            var results: [(NodeRecord, Bool)] = []
            for await result in group { results.append(result) }
            return results
        }
        let limit = self.configuration.probeFailures
        return self.failedProbes.withLock { failures in
            // Forget nodes that are gone.
            let present = Set(nodes.map(\.id))
            failures = failures.filter { present.contains($0.key) }
            var dead: [(node: NodeRecord, why: String)] = []
            for (node, alive) in results {
                if alive {
                    failures[node.id] = nil
                } else {
                    failures[node.id, default: 0] += 1
                    if failures[node.id]! >= limit {
                        dead.append((node, "/health at \(node.address) unanswered \(limit) times in a row (pid \(node.pid) on \(node.host))"))
                    }
                }
            }
            return dead
        }
    }

    /// Takes or renews the lease; logs when this reaper becomes active or standby.
    func holdsLease(now: Date = Date()) async throws -> Bool {
        let holds = try await self.registry.acquireLease("reaper", holder: self.configuration.holder, duration: self.configuration.leaseDuration, now: now)
        let previous = self.active.withLock { state -> Bool? in
            defer { state = holds }
            return state
        }
        if previous != holds {
            self.logger.notice(holds ? "reaper active: holds the lease" : "reaper on standby: another reaper holds the lease")
        }
        return holds
    }

    /// Every ``Configuration/interval``: renews the lease and, while holding it, reaps.
    /// Runs until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    if try await self.holdsLease() {
                        try await self.reapOnce()
                    }
                    if failing { self.logger.notice("reaper reaches the registry again") }
                    failing = false
                } catch {
                    if !failing { self.logger.error("reaper cannot reach the registry; will retry", metadata: ["error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: self.configuration.interval)
            }
        }
    }
}
