import Foundation
import Logging
import Testing

@testable import Reaper
@testable import SkyLib
import RegistrySQLite
import RegistryKit

struct ReaperTests {
    let registry: SQLiteRegistry
    let counters = Counters()
    let reaper: Reaper

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
        self.reaper = Reaper(registry: self.registry, probe: nil, counters: self.counters, logger: Logger(label: "test"))
    }

    func add(_ service: String, heartbeatAgo: TimeInterval, ttl: Double = 3) async throws -> NodeRecord {
        let node = NodeRecord(
            kind: .service, service: service, address: "127.0.0.1:\(Int.random(in: 1000...60000))",
            heartbeatAt: Date().addingTimeInterval(-heartbeatAgo), status: .ready, ttl: ttl
        )
        try await self.registry.register(node)
        return node
    }

    @Test func removesDeadNodesAndRecordsWhy() async throws {
        let dead = try await self.add("upper", heartbeatAgo: 5)
        let alive = try await self.add("upper", heartbeatAgo: 0.1)
        let alsoAlive = try await self.add("count", heartbeatAgo: 0.1)
        let patient = try await self.add("count", heartbeatAgo: 5, ttl: 30)
        let pass = try await self.reaper.reapOnce()
        #expect(pass.reaped == [dead.id] && !pass.restrained)
        #expect(Set(try await self.registry.nodes().map(\.id)) == [alive.id, alsoAlive.id, patient.id])
        let event = try #require(try await self.registry.events(limit: 1).first)
        #expect(event.kind == "reaped" && event.nodeID == dead.id && event.service == "upper")
        #expect(event.message.contains("no heartbeat for 5.") && event.message.contains("ttl 3.0s"))
        #expect(self.counters.value("reaper-reaped") == 1)
    }

    /// More than half the nodes dead at once: the reaper assumes it is the one cut off.
    @Test func selfPreservationHoldsBackAMassReaping() async throws {
        for _ in 0..<3 { _ = try await self.add("upper", heartbeatAgo: 10) }
        _ = try await self.add("upper", heartbeatAgo: 0)
        let pass = try await self.reaper.reapOnce()
        #expect(pass.restrained && pass.reaped.isEmpty)
        #expect(try await self.registry.nodes().count == 4)
        #expect(self.counters.value("reaper-restrained") == 1)
    }

    @Test func aLoneDeadNodeIsStillReaped() async throws {
        _ = try await self.add("upper", heartbeatAgo: 10)
        #expect(try await self.reaper.reapOnce().reaped.count == 1)
        #expect(try await self.registry.nodes().isEmpty)
    }
}

/// A probe whose answers the test sets per address.
final class ScriptedProbe: HealthProbe {
    let dead = Locked<Set<String>>([])
    func isAlive(_ node: NodeRecord) async -> Bool { !self.dead.withLock { $0.contains(node.address) } }
}

struct ReaperProbeAndLeaseTests {
    let registry: SQLiteRegistry
    let probe = ScriptedProbe()

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
    }

    func reaper(holder: String = "r1") -> Reaper {
        var configuration = Reaper.Configuration()
        configuration.holder = holder
        return Reaper(registry: self.registry, configuration: configuration, probe: self.probe, counters: Counters(), logger: Logger(label: "test"))
    }

    func add(_ address: String) async throws -> NodeRecord {
        // A long TTL: only the probes may make these nodes dead, however slowly the test runs.
        let node = NodeRecord(kind: .service, service: "svc", address: address, status: .ready, ttl: 3600)
        try await self.registry.register(node)
        return node
    }

    @Test func threeUnansweredProbesInARowOverTheWindowMakeANodeThatDoesNotHeartbeatDead() async throws {
        let hung = try await self.add("127.0.0.1:7001")
        _ = try await self.add("127.0.0.1:7002")
        _ = try await self.add("127.0.0.1:7003")
        let reaper = self.reaper()
        let start = Date()
        func pass(_ seconds: Double) async throws -> [String] { try await reaper.reapOnce(now: start.addingTimeInterval(seconds)).reaped }
        self.probe.dead.withLock { $0 = ["127.0.0.1:7001"] }
        #expect(try await pass(0).isEmpty)
        // An answer in between starts the count again.
        self.probe.dead.withLock { $0 = [] }
        #expect(try await pass(1).isEmpty)
        self.probe.dead.withLock { $0 = ["127.0.0.1:7001"] }
        #expect(try await pass(2).isEmpty)
        #expect(try await pass(3).isEmpty)
        // Three in a row, but over less than the probe window (3 s): not yet.
        #expect(try await pass(4).isEmpty)
        #expect(try await pass(5) == [hung.id])
        let event = try #require(try await self.registry.events(limit: 1).first)
        #expect(event.message.contains("/health at 127.0.0.1:7001 unanswered 4 times in a row over 3.0s with no heartbeat meanwhile"))
    }

    /// The flapping case: a reaper cut off from a service host but not from the registry
    /// fails every probe, yet the node's heartbeats reach the registry. It is never reaped.
    @Test func aHeartbeatOutweighsFailedProbesFromOneVantagePoint() async throws {
        let cutOff = try await self.add("127.0.0.1:7001")
        _ = try await self.add("127.0.0.1:7002")
        _ = try await self.add("127.0.0.1:7003")
        let reaper = self.reaper()
        self.probe.dead.withLock { $0 = ["127.0.0.1:7001"] }
        let start = Date()
        for tick in 0..<40 {   // 20 s of passes every 0.5 s, a heartbeat every second
            let now = start.addingTimeInterval(Double(tick) * 0.5)
            if tick % 2 == 1 { #expect(try await self.registry.heartbeat(nodeID: cutOff.id, status: .ready, stats: [:], at: now)) }
            #expect(try await reaper.reapOnce(now: now).reaped.isEmpty, "reaped at pass \(tick)")
        }
        #expect(try await self.registry.nodes().map(\.id).contains(cutOff.id))
        // When its heartbeats stop too, the probes decide.
        let later = start.addingTimeInterval(20)
        var reaped: [String] = []
        for tick in 0..<8 where reaped.isEmpty { reaped = try await reaper.reapOnce(now: later.addingTimeInterval(Double(tick) * 0.5)).reaped }
        #expect(reaped == [cutOff.id])
    }

    /// A node reaped, back, and reaped again, over and over: self-preservation counts the
    /// reaps over its window, not one pass, says so in the node's stats and an event, and
    /// lets go once the window has passed.
    @Test func selfPreservationJudgesReapsOverAWindow() async throws {
        let reaper = self.reaper()
        var nodes: [NodeRecord] = []
        for port in 7001...7005 { nodes.append(try await self.add("127.0.0.1:\(port)")) }
        var flapping = nodes[0]
        let start = Date()
        var reapedTimes = 0
        for round in 0..<4 {
            let now = start.addingTimeInterval(Double(round))
            flapping.heartbeatAt = now.addingTimeInterval(-3600 - 10)   // expired again
            try await self.registry.register(flapping)
            for other in nodes.dropFirst() { _ = try await self.registry.heartbeat(nodeID: other.id, status: .ready, stats: [:], at: now) }
            let pass = try await reaper.reapOnce(now: now)
            reapedTimes += pass.reaped.count
            if pass.restrained { break }
        }
        // 5 nodes seen: the third reap within 10 s would make 3 > 2.5.
        #expect(reapedTimes == 2)
        let held = try #require(reaper.holdingBack)
        #expect(held.reapedRecently == 2 && held.lookDead == 1 && held.nodes == 5)
        #expect(reaper.stats[ReaperStats.holdingBack] == 1)
        var record = nodes[1]
        record.stats = reaper.stats
        #expect(record.reaperHoldingBack()?.contains("1 node(s) look dead and 2 were reaped in the last 10s, of 5 seen") == true)
        #expect(try await self.registry.events(limit: 5).contains { $0.kind == "reaper-holding-back" })
        // Past the window, the lone dead node is reaped again and the reaper says it resumed.
        let later = start.addingTimeInterval(15)
        for other in nodes.dropFirst() { _ = try await self.registry.heartbeat(nodeID: other.id, status: .ready, stats: [:], at: later) }
        #expect(try await reaper.reapOnce(now: later).reaped == [flapping.id])
        #expect(reaper.holdingBack == nil && reaper.stats[ReaperStats.holdingBack] == nil)
        #expect(try await self.registry.events(limit: 5).contains { $0.kind == "reaper-resumed" })
    }

    @Test func onlyTheLeaseHolderIsActive() async throws {
        let first = self.reaper(holder: "r1")
        let second = self.reaper(holder: "r2")
        let now = Date()
        #expect(try await first.holdsLease(now: now))
        #expect(try await second.holdsLease(now: now.addingTimeInterval(1)) == false)
        #expect(first.isActive == true && second.isActive == false)
        // The first dies (stops renewing): the second takes over within one lease duration.
        #expect(try await second.holdsLease(now: now.addingTimeInterval(3.1)))
    }
}

/// After the reaper lost the registry itself, nodes get one TTL from its return to heartbeat.
struct ReaperOutageTests {
    @Test func afterARegistryOutageEveryNodeGetsOneTTLBeforeItIsReaped() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
        let reaper = Reaper(registry: registry, probe: nil, counters: Counters(), logger: Logger(label: "test"))
        let start = Date()
        // Two nodes last heard from 10 s ago (the outage), one that heartbeats.
        let stale = NodeRecord(kind: .service, service: "upper", address: "127.0.0.1:7001", heartbeatAt: start.addingTimeInterval(-10), status: .ready, ttl: 3)
        let alsoStale = NodeRecord(kind: .service, service: "upper", address: "127.0.0.1:7002", heartbeatAt: start.addingTimeInterval(-10), status: .ready, ttl: 3)
        let live = NodeRecord(kind: .service, service: "count", address: "127.0.0.1:7003", heartbeatAt: start, status: .ready, ttl: 3)
        for node in [stale, alsoStale, live] { try await registry.register(node) }
        reaper.registryReturned(at: start)
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(1)).reaped.isEmpty)
        // One comes back; the other does not heartbeat within its TTL and the grace of the registry's return.
        #expect(try await registry.heartbeat(nodeID: stale.id, status: .ready, stats: [:], at: start.addingTimeInterval(2)))
        #expect(try await registry.heartbeat(nodeID: live.id, status: .ready, stats: [:], at: start.addingTimeInterval(2)))
        // Still within its TTL plus the outage grace (10 s): its heartbeat may be stuck behind
        // a call hung since before the outage.
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(12.5)).reaped.isEmpty)
        #expect(try await registry.heartbeat(nodeID: stale.id, status: .ready, stats: [:], at: start.addingTimeInterval(12)))
        #expect(try await registry.heartbeat(nodeID: live.id, status: .ready, stats: [:], at: start.addingTimeInterval(12)))
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(13.5)).reaped == [alsoStale.id])
    }

    /// The registry answers reads while its writes stall (a disk, a held SQLite lock): the
    /// reaper's own heartbeat stops landing with everyone's, and missed heartbeats count
    /// against nobody until they land, then each node gets its TTL plus the outage grace.
    @Test func whileThisReapersOwnHeartbeatDoesNotLandNothingIsReapedForMissedHeartbeats() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
        let start = Date()
        let own = NodeRecord(kind: .reaper, service: "reaper", address: "-", heartbeatAt: start, status: .ready, ttl: 3)
        let upper = NodeRecord(kind: .service, service: "upper", address: "127.0.0.1:7001", heartbeatAt: start, status: .ready, ttl: 3)
        for node in [own, upper] { try await registry.register(node) }
        var configuration = Reaper.Configuration()
        configuration.ownNodeID = own.id
        let reaper = Reaper(registry: registry, configuration: configuration, probe: nil, counters: Counters(), logger: Logger(label: "test"))
        // 5 s on, past upper's TTL, and the reaper's own heartbeat has not landed either.
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(5)).reaped.isEmpty)
        // Writes land again, the reaper's own first; upper's is still queued.
        #expect(try await registry.heartbeat(nodeID: own.id, status: .ready, stats: [:], at: start.addingTimeInterval(6)))
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(6.5)).reaped.isEmpty)
        #expect(try await registry.heartbeat(nodeID: own.id, status: .ready, stats: [:], at: start.addingTimeInterval(19)))
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(19)).reaped.isEmpty)
        // Its TTL plus the grace after the stall ended, and still nothing from upper: dead.
        #expect(try await registry.heartbeat(nodeID: own.id, status: .ready, stats: [:], at: start.addingTimeInterval(20)))
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(20)).reaped == [upper.id])
    }

    @Test func aCallThatHungThroughACutCountsAsAnOutage() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
        let reaper = Reaper(registry: registry, probe: nil, counters: Counters(), logger: Logger(label: "test"))
        let start = Date()
        let stale = NodeRecord(kind: .service, service: "upper", address: "127.0.0.1:7001", heartbeatAt: start.addingTimeInterval(-10), status: .ready, ttl: 3)
        try await registry.register(stale)
        // Calls that take a moment are no outage.
        #expect(!reaper.callEnded(startedAt: start.addingTimeInterval(-10), at: start.addingTimeInterval(-9)))
        // A call hung for 10 s over a link that dropped packets, then succeeded: no error was
        // ever seen, yet nodes could not heartbeat meanwhile.
        #expect(reaper.callEnded(startedAt: start.addingTimeInterval(-10), at: start))
        #expect(try await reaper.reapOnce(now: start.addingTimeInterval(1)).reaped.isEmpty)
    }

    @Test func aReaperWhoseLeaseRanOutReapsNothing() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-reaper-\(UUID().uuidString)/r.sqlite")
        var configuration = Reaper.Configuration()
        configuration.leaseDuration = 3
        let reaper = Reaper(registry: registry, configuration: configuration, probe: nil, counters: Counters(), logger: Logger(label: "test"))
        let dead = NodeRecord(kind: .service, service: "upper", address: "127.0.0.1:7001", heartbeatAt: Date().addingTimeInterval(-10), status: .ready, ttl: 3)
        try await registry.register(dead)
        // Took the lease 4 s ago and has not renewed it (cut off meanwhile): not active, no reaping.
        #expect(try await reaper.holdsLease(now: Date().addingTimeInterval(-4)))
        #expect(reaper.isActive == false)
        #expect(try await reaper.reapOnce().reaped.isEmpty)
        #expect(try await registry.nodes().count == 1)
        #expect(try await reaper.holdsLease())
        #expect(try await reaper.reapOnce().reaped == [dead.id])
    }
}
