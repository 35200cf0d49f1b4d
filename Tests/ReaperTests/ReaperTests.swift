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

    @Test func threeUnansweredProbesInARowMakeANodeDead() async throws {
        let hung = try await self.add("127.0.0.1:7001")
        _ = try await self.add("127.0.0.1:7002")
        _ = try await self.add("127.0.0.1:7003")
        let reaper = self.reaper()
        self.probe.dead.withLock { $0 = ["127.0.0.1:7001"] }
        #expect(try await reaper.reapOnce().reaped.isEmpty)
        // An answer in between starts the count again.
        self.probe.dead.withLock { $0 = [] }
        #expect(try await reaper.reapOnce().reaped.isEmpty)
        self.probe.dead.withLock { $0 = ["127.0.0.1:7001"] }
        #expect(try await reaper.reapOnce().reaped.isEmpty)
        #expect(try await reaper.reapOnce().reaped.isEmpty)
        #expect(try await reaper.reapOnce().reaped == [hung.id])
        let event = try #require(try await self.registry.events(limit: 1).first)
        #expect(event.message.contains("/health at 127.0.0.1:7001 unanswered 3 times in a row"))
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
