public import Foundation
public import Logging
public import ServiceLifecycle
public import SkyLib
import Synchronization
public import RegistryKit

/// Removes nodes that died, and records who, why and when.
///
/// A node is dead when its heartbeat is older than its TTL. `/health` probes decide only for
/// nodes whose heartbeat stands still: a node is dead on probe evidence when its `/health`
/// went unanswered ``Configuration/probeFailures`` times in a row over at least
/// ``Configuration/probeWindow`` and its heartbeat did not advance meanwhile (a node added by
/// hand that never heartbeats, or one with a long TTL that went silent). A node that heartbeats
/// is alive by the registry's account, whatever one reaper's probes say: a reaper cut off from
/// a service host but not from the registry must not reap (and reap again, and again) the live
/// nodes on it. Routers judge reachability for themselves and leave out what they cannot reach.
///
/// When the reaper itself lost the registry for a while — a call failed, or no call got
/// through for longer than a pass or two (over a link that drops packets calls hang rather
/// than fail) — the nodes most likely could not heartbeat either: once it is back, each node
/// gets its TTL plus ``Configuration/outageGrace`` before its heartbeat's age counts, so a
/// registry outage reaps no live node.
///
/// Several reapers may run; a lease in the registry makes exactly one active, and another
/// takes over within one lease duration and one pass when it dies or is cut off. A reaper
/// counts its lease from before the call that took it and reaps nothing past that, so a reaper
/// cut off mid-pass never acts beside the one that took over.
///
/// Self-preservation: when the nodes reaped over the last ``Configuration/guardWindow``
/// together with those that look dead now are more than half of the nodes seen in that
/// window, the reaper assumes that it, not they, is cut off (a registry hiccup, a paused VM,
/// a partition), removes nothing, and says so: in its log, in an event, and in its node's
/// stats (`sky nodes` and the dashboard show them). Judging over a window rather than one pass
/// also catches reaps spread over passes (a node reaped, back, reaped again). Eureka does the
/// same, but waits minutes; this reaper acts every pass.
public final class Reaper: Service, Sendable {
    /// How the reaper works.
    public struct Configuration: Sendable {
        /// How often the registry is scanned.
        public var interval: Duration = .milliseconds(500)
        /// Most of the nodes one pass may remove before self-preservation stops it.
        public var maxFraction: Double = 0.5
        /// Unanswered `/health` probes in a row that make a node whose heartbeat stands still
        /// dead.
        public var probeFailures: Int = 3
        /// The shortest time those probes must span, without a heartbeat, before they decide:
        /// longer than any heartbeat interval, so a heartbeating node always shows it.
        public var probeWindow: TimeInterval = 3
        /// How far back self-preservation counts reaps.
        public var guardWindow: TimeInterval = 10
        /// After this reaper could not reach the registry, how long beyond its TTL each node
        /// still gets to heartbeat, counted from the registry's return: the longest a node's
        /// own registry call may stay hung on a connection made before the outage (MongoDB's
        /// socket timeout, 10 s unless the URI sets another). Over a link that dropped packets
        /// the kernel retransmits with growing backoff, so nodes come back one by one, some
        /// seconds after the reaper does.
        public var outageGrace: TimeInterval = 10
        /// How long the active reaper's lease lasts without renewal; a standby takes over
        /// after it.
        public var leaseDuration: TimeInterval = 3
        /// This reaper's id in the lease.
        public var holder: String = Identifiers.nodeID()
        /// The node record this reaper's process heartbeats, when it has one: while even that
        /// heartbeat does not land, the registry's writes stall and no heartbeat's age counts.
        public var ownNodeID: String?
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
    private let failedProbes = Mutex<[String: ProbeStreak]>([:])
    private let active = Mutex<Bool?>(nil)
    /// Until when the lease this reaper took is surely its own (from the start of the call
    /// that took it): past this, it reaps nothing even if it has not yet heard otherwise.
    private let leaseUntil = Mutex<Date?>(nil)
    /// When the registry last came back after this reaper lost it.
    private let registryBackAt = Mutex<Date?>(nil)
    /// Whether the last pass saw no heartbeat landing (``heartbeatsStalled(_:now:)``).
    private let stalled = Mutex(false)
    private let guardState = Mutex(GuardState())

    /// Unanswered probes in a row for one node, and its heartbeat when they began.
    struct ProbeStreak {
        var count: Int
        var since: Date
        var heartbeatAt: Date
    }

    /// What self-preservation remembers between passes.
    struct GuardState {
        /// Reaps within the guard window, oldest first (a node reaped twice counts twice).
        var reaps: [(at: Date, nodeID: String)] = []
        /// Nodes seen within the guard window, with when they were last seen.
        var seen: [String: Date] = [:]
        var holdingBack: HoldingBack?
    }

    /// - Parameter probe: how nodes are probed; `nil` to rely on heartbeats alone.
    public init(
        registry: any NodeDirectory & EventLog & LeaseStore,
        configuration: Configuration = Configuration(),
        probe: (any HealthProbe)?,
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

    /// Why self-preservation is holding the reaper back.
    public struct HoldingBack: Sendable, Equatable {
        /// Since when.
        public var since: Date
        /// Nodes that looked dead in the latest pass.
        public var lookDead: Int
        /// Nodes reaped within the guard window.
        public var reapedRecently: Int
        /// Nodes seen within the guard window.
        public var nodes: Int
        /// The window, in seconds.
        public var window: TimeInterval

        /// One line for logs and events.
        public var message: String {
            "self-preservation: \(self.lookDead) node(s) look dead and \(self.reapedRecently) were reaped in the last \(Int(self.window))s, of \(self.nodes) seen; more than half, so this reaper assumes it is the one cut off and removes none"
        }
    }

    /// Whether this reaper holds the lease (`nil` before the first try): it took it, and the
    /// lease has not run out since.
    public var isActive: Bool? {
        guard let active = self.active.withLock({ $0 }) else { return nil }
        return active && (self.leaseUntil.withLock { $0 }.map { Date() < $0 } ?? true)
    }

    /// Tells the reaper that the registry answers again after it could not reach it: nodes
    /// could not heartbeat meanwhile either, so each gets its TTL plus
    /// ``Configuration/outageGrace`` from now before its heartbeat's age counts against it.
    func registryReturned(at now: Date = Date()) {
        self.registryBackAt.withLock { $0 = now }
    }

    /// Notes a call to the registry that succeeded, started at `started` and ended at `now`,
    /// and returns whether it hung through an outage: it took longer than
    /// `max(2 × interval, 2 s)`. Over a link that drops packets a call does not fail, it
    /// hangs (the kernel retransmits) and completes once the link heals; nodes could not
    /// heartbeat meanwhile either, so the registry counts as returned now.
    @discardableResult
    func callEnded(startedAt started: Date, at now: Date = Date()) -> Bool {
        guard now.timeIntervalSince(started) > max(2 * self.configuration.interval.seconds, 2) else { return false }
        self.logger.notice("a registry call took \(String(format: "%.1f", now.timeIntervalSince(started)))s: counted as an outage; every node gets its TTL plus the outage grace to heartbeat before it counts as dead")
        self.registryReturned(at: now)
        return true
    }

    /// Why the reaper is holding back now, or `nil` when it is not.
    public var holdingBack: HoldingBack? { self.guardState.withLock { $0.holdingBack } }

    /// The reaper's state as node stats, keyed by ``ReaperStats`` (`sky nodes` and the
    /// dashboard read them back with `NodeRecord.reaperHoldingBack(at:)`).
    public var stats: [String: Int64] {
        var stats: [String: Int64] = [ReaperStats.active: self.isActive == true ? 1 : 0]
        if let held = self.holdingBack {
            stats[ReaperStats.holdingBack] = 1
            stats[ReaperStats.holdingBackSince] = Int64(held.since.timeIntervalSince1970)
            stats[ReaperStats.lookDead] = Int64(held.lookDead)
            stats[ReaperStats.reapedRecently] = Int64(held.reapedRecently)
            stats[ReaperStats.nodesSeen] = Int64(held.nodes)
            stats[ReaperStats.guardWindow] = Int64(held.window)
        }
        return stats
    }

    /// Scans once: probes live-looking nodes, then removes expired and unresponsive ones.
    @discardableResult
    public func reapOnce(now: Date = Date()) async throws -> Pass {
        let started = Date()
        let nodes = try await self.registry.nodes()
        self.callEnded(startedAt: started)
        // This reaper's own heartbeat not landing: the registry answers reads
        // but its writes stall (a disk, an SQLite file's write lock). Nobody could heartbeat, so
        // no heartbeat's age counts; when they land again each node gets its TTL plus the
        // outage grace, as after an outage. `sky drill`'s `suspend:registry` found this: reaps
        // queued behind the stall ran before the heartbeats did and removed live instances.
        let stalled = self.configuration.ownNodeID.map { Self.heartbeatsStalled(nodes, own: $0, now: now) } ?? false
        if stalled || self.stalled.withLock({ $0 }) { self.registryReturned(at: now) }
        if stalled != self.stalled.withLock({ $0 }) {
            self.stalled.withLock { $0 = stalled }
            if stalled {
                self.logger.warning("no node's heartbeat is landing in the registry (its writes stall?): reaping nothing for missed heartbeats until they land")
            } else {
                self.logger.notice("heartbeats land in the registry again; every node gets its TTL plus the outage grace")
            }
        }
        let back = self.registryBackAt.withLock { $0 }
        // After an outage of our own, a heartbeat's age counts only from the registry's return.
        let grace = self.configuration.outageGrace
        let expired = nodes.filter { node in node.isExpired(at: now) && (back.map { now.timeIntervalSince($0) > node.ttl + grace } ?? true) }
        var dead: [(node: NodeRecord, why: String)] = expired.map { node in
            (node, String(
                format: "no heartbeat for %.1fs (ttl %.1fs); last seen at %@, pid %d on %@",
                now.timeIntervalSince(node.heartbeatAt), node.ttl, node.address, node.pid, node.host
            ))
        }
        let expiredIDs = Set(expired.map(\.id))
        dead += await self.unresponsive(nodes.filter { !expiredIDs.contains($0.id) && !$0.isExpired(at: now) }, now: now)
        var pass = Pass()
        let held = await self.judge(nodes: nodes, lookDead: dead.map(\.node.id), now: now)
        guard held == nil else {
            pass.restrained = true
            self.counters.add("reaper-restrained")
            return pass
        }
        guard !dead.isEmpty else { return pass }
        for (node, why) in dead {
            // A lease that ran out mid-pass may be another reaper's by now.
            if let until = self.leaseUntil.withLock({ $0 }), Date() >= until {
                self.logger.warning("lease ran out during a pass; leaving the rest to the reaper that holds it")
                break
            }
            // Either way a node goes only if no heartbeat landed meanwhile: expired ones only if
            // still expired, unresponsive ones only if their heartbeat still stands where it was.
            let cutoff = node.isExpired(at: now) ? now.addingTimeInterval(-node.ttl) : node.heartbeatAt.addingTimeInterval(0.001)
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
            self.guardState.withLock { $0.reaps.append((now, node.id)) }
        }
        return pass
    }

    /// Whether this reaper's own record (`own`) has not heartbeated for half its TTL while the
    /// registry answers: its own writes are not landing, so nobody's are.
    static func heartbeatsStalled(_ nodes: [NodeRecord], own: String, now: Date) -> Bool {
        guard let record = nodes.first(where: { $0.id == own }), record.ttl > 0, record.status == .ready else { return false }
        return now.timeIntervalSince(record.heartbeatAt) > record.ttl / 2
    }

    /// Self-preservation: whether to hold back this pass, judged over the guard window.
    /// Logs and records an event when holding back starts and when it ends.
    private func judge(nodes: [NodeRecord], lookDead: [String], now: Date) async -> HoldingBack? {
        let window = self.configuration.guardWindow
        let (started, ended) = self.guardState.withLock { state -> (HoldingBack?, HoldingBack?) in
            let horizon = now.addingTimeInterval(-window)
            state.reaps.removeAll { $0.at < horizon }
            state.seen = state.seen.filter { $0.value >= horizon }
            for node in nodes { state.seen[node.id] = now }
            let seen = state.seen.count
            let previous = state.holdingBack
            // A lone node dying is normal; many at once, or one over and over, more likely
            // means we are the ones cut off.
            if !lookDead.isEmpty, seen > 2, Double(lookDead.count + state.reaps.count) > Double(seen) * self.configuration.maxFraction {
                state.holdingBack = HoldingBack(
                    since: previous?.since ?? now, lookDead: lookDead.count, reapedRecently: state.reaps.count, nodes: seen, window: window
                )
                return (previous == nil ? state.holdingBack : nil, nil)
            }
            state.holdingBack = nil
            return (nil, previous)
        }
        if let started {
            self.logger.critical("\(started.message)")
            await self.recordQuietly(RegistryEvent(at: now, kind: "reaper-holding-back", nodeID: self.configuration.holder, service: "reaper", message: started.message))
        }
        if let ended {
            let message = String(format: "self-preservation over after %.1fs: reaping again", now.timeIntervalSince(ended.since))
            self.logger.notice("\(message)")
            await self.recordQuietly(RegistryEvent(at: now, kind: "reaper-resumed", nodeID: self.configuration.holder, service: "reaper", message: message))
        }
        return self.guardState.withLock { $0.holdingBack }
    }

    /// Records an event the log already told; a registry that cannot take it is counted.
    private func recordQuietly(_ event: RegistryEvent) async {
        do {
            try await self.registry.record(event)
        } catch {
            self.counters.add("reaper-event-errors")
        }
    }

    /// Probes every node that has an address, in parallel, and answers those that have now
    /// missed ``Configuration/probeFailures`` probes in a row over ``Configuration/probeWindow``
    /// without a heartbeat.
    private func unresponsive(_ nodes: [NodeRecord], now: Date) async -> [(node: NodeRecord, why: String)] {
        guard let probe else { return [] }
        let probed = nodes.filter { $0.address.contains(":") }
        let results = await withTaskGroup(of: (NodeRecord, Bool).self) { group in
            for node in probed { group.addTask { (node, await probe.isAlive(node)) } }
            var results: [(NodeRecord, Bool)] = []
            for await result in group { results.append(result) }
            return results
        }
        let limit = self.configuration.probeFailures
        let window = self.configuration.probeWindow
        return self.failedProbes.withLock { streaks in
            // Forget nodes that are gone.
            let present = Set(nodes.map(\.id))
            streaks = streaks.filter { present.contains($0.key) }
            var dead: [(node: NodeRecord, why: String)] = []
            for (node, alive) in results {
                guard !alive else {
                    streaks[node.id] = nil
                    continue
                }
                // A heartbeat during the streak outweighs it: the node reaches the registry,
                // so only this vantage point fails to reach it. Start counting again.
                if var streak = streaks[node.id], streak.heartbeatAt >= node.heartbeatAt {
                    streak.count += 1
                    streaks[node.id] = streak
                } else {
                    streaks[node.id] = ProbeStreak(count: 1, since: now, heartbeatAt: node.heartbeatAt)
                }
                let streak = streaks[node.id]!
                if streak.count >= limit, now.timeIntervalSince(streak.since) >= window {
                    dead.append((node, String(
                        format: "/health at %@ unanswered %d times in a row over %.1fs with no heartbeat meanwhile (pid %d on %@)",
                        node.address, streak.count, now.timeIntervalSince(streak.since), node.pid, node.host
                    )))
                }
            }
            return dead
        }
    }

    /// Takes or renews the lease; logs when this reaper becomes active or standby.
    func holdsLease(now: Date = Date()) async throws -> Bool {
        let started = Date()
        let holds = try await self.registry.acquireLease("reaper", holder: self.configuration.holder, duration: self.configuration.leaseDuration, now: now)
        self.callEnded(startedAt: started)
        // Counted from before the call: the registry may have granted it at any moment since.
        self.leaseUntil.withLock { $0 = holds ? now.addingTimeInterval(self.configuration.leaseDuration) : nil }
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
                    let holds = try await self.holdsLease()
                    if failing {
                        self.logger.notice("reaper reaches the registry again; every node gets its TTL plus the outage grace to heartbeat before it counts as dead")
                        self.registryReturned()
                    }
                    failing = false
                    if holds { try await self.reapOnce() }
                } catch {
                    if !failing { self.logger.error("reaper cannot reach the registry; will retry", metadata: ["error": "\(error)"]) }
                    failing = true
                    // A lease it cannot renew may already be another reaper's: stop saying it
                    // is active (its stats, `sky nodes`) until it holds the lease again.
                    let wasActive = self.active.withLock { state -> Bool in
                        defer { state = false }
                        return state == true
                    }
                    if wasActive { self.logger.notice("reaper on standby: cannot renew its lease") }
                }
                try? await Task.sleep(for: self.configuration.interval)
            }
        }
    }
}
