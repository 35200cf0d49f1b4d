import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Partitions between hosts made of network namespaces (``PartitionCluster``), each with its
/// figures: requests answered and failed, the slowest, and the time to recover. Each test
/// writes its row of the table in docs/PARTITIONS.md and the README (``PartitionCluster/report``).
///
/// The scenario's schedule (cut at 2–3 s, heal after so long) is wall-clock by nature; every
/// wait for an effect is a poll with a deadline.
@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .enabled(if: requirement(Hosts.unavailable == nil, test: "PartitionTests", Hosts.unavailable ?? ""), "needs network namespaces")
)
struct PartitionTests {
    static func seconds(since start: ContinuousClock.Instant) -> String {
        String(format: "%.1f s", (ContinuousClock.now - start).seconds)
    }

    /// `uppercase-processed` on the instance at `host`, read on that host.
    func processed(_ cluster: PartitionCluster, on host: String) async throws -> Int64 {
        let (_, output) = try await cluster.run(host, ["curl", "-s", "--max-time", "2", "http://\(cluster.hosts.address(host)):9000/debug/vars"])
        return try JSONParser.parse(output)["uppercase-processed"]?.intValue ?? -1
    }

    func reaped(_ nodeID: String, by cluster: PartitionCluster) -> Bool {
        [cluster.watch1, cluster.watch2].contains { $0.stderr.contains("reaped node") && $0.stderr.contains(nodeID) }
    }

    @Test func routerCutFromOneServiceHostKeepsAnsweringAndUsesItAgainWhenHealed() async throws {
        let cluster = try await PartitionCluster()
        defer { cluster.close() }
        try await cluster.startNodes()
        // Every process registers its own host's address, the one bound to 0.0.0.0 too (a
        // reaper's record says its admin address once that listener runs).
        let expected = Set([("east", 9000), ("west", 9000), ("edge", 8080), ("watch1", 9100), ("watch2", 9100)].map { "\(cluster.hosts.address($0.0)):\($0.1)" })
        var addresses: Set<String> = []
        let advertised = try await cluster.poll(within: 10) {
            addresses = Set(try await cluster.nodes().compactMap { $0["address"]?.stringValue })
            return expected.isSubset(of: addresses)
        }
        #expect(advertised, "not every host advertised at its address: \(addresses), expected \(expected.sorted())")
        // The README's promise: a listener beyond loopback without SKYNET_TOKEN warns.
        #expect(cluster.watch1.stderr.contains("beyond this machine with no SKYNET_TOKEN set"), "\(cluster.watch1.stderr)")
        let finish = try cluster.drive(seconds: 14)
        try await Task.sleep(for: .seconds(3))
        try cluster.hosts.cut("edge", "east")
        try await Task.sleep(for: .seconds(5))
        let before = try await self.processed(cluster, on: "east")
        try cluster.hosts.heal("edge", "east")
        let healed = ContinuousClock.now
        let back = try await cluster.poll(within: 10) { try await self.processed(cluster, on: "east") > before }
        let recovery = Self.seconds(since: healed)
        let load = try await finish()
        #expect(load.failed == 0, "\(load.errors)")
        #expect(back, "the router never called the healed host again")
        PartitionCluster.report(
            "1-router-service", partition: "router ↔ one service host, cut 5 s", load: load,
            recovery: "\(recovery) until the healed host takes calls again",
            guarantee: "every request answered (calls that hang are retried on the other instance)", held: load.failed == 0 && back
        )
    }

    @Test func aServiceHostCutFromTheRegistryIsReapedAndComesBackByItself() async throws {
        let cluster = try await PartitionCluster()
        defer { cluster.close() }
        try await cluster.startNodes()
        let east = cluster.hosts.address("east") + ":9000"
        let eastID = try #require(try await cluster.nodeID(at: east))
        let finish = try cluster.drive(seconds: 16)
        try await Task.sleep(for: .seconds(2))
        try cluster.hosts.cut("east", "registry")
        let cut = ContinuousClock.now
        // The stated rule: no heartbeat for longer than the TTL (3 s) → reaped.
        let reaped = try await cluster.poll(within: 10) { self.reaped(eastID, by: cluster) }
        let reapedAfter = Self.seconds(since: cut)
        try await Task.sleep(until: cut + .seconds(8))
        try cluster.hosts.heal("east", "registry")
        let healed = ContinuousClock.now
        let back = try await cluster.poll(within: 15) {
            try await cluster.nodes().contains { $0["id"]?.stringValue == eastID && $0["status"] == "ready" }
        }
        let recovery = Self.seconds(since: healed)
        let load = try await finish()
        #expect(reaped, "the cut-off node was not reaped")
        #expect(back, "the node did not register again after the heal")
        #expect(cluster.east.process.isRunning && cluster.east.stderr.contains("registered again"), "\(cluster.east.stderr.suffix(2000))")
        #expect(load.failed == 0, "\(load.errors)")
        PartitionCluster.report(
            "2-service-registry", partition: "one service host ↔ registry, cut 8 s", load: load,
            recovery: "reaped \(reapedAfter) after the cut (TTL 3 s); back in the registry \(recovery) after the heal, same process and node id",
            guarantee: "reaped by its TTL; registers again by itself, no restart; requests answered throughout",
            held: reaped && back && load.failed == 0
        )
    }

    @Test func theRegistryCutFromEveryoneFor10SecondsReapsNothingAndRoutingGoesOn() async throws {
        let cluster = try await PartitionCluster()
        defer { cluster.close() }
        try await cluster.startNodes()
        let ids = Set(try await cluster.nodes().compactMap { $0["id"]?.stringValue })
        #expect(ids.count == 5)
        let finish = try cluster.drive(seconds: 18)
        try await Task.sleep(for: .seconds(2))
        try cluster.hosts.isolate("registry")
        try await Task.sleep(for: .seconds(10))
        try cluster.hosts.rejoin("registry")
        let healed = ContinuousClock.now
        let back = try await cluster.poll(within: 20) {
            let nodes = try await cluster.nodes()
            let fresh = nodes.filter { $0["status"] == "ready" }.compactMap { $0["id"]?.stringValue }
            return ids.isSubset(of: Set(fresh))
        }
        let recovery = Self.seconds(since: healed)
        let load = try await finish()
        let reapedAny = ids.contains { self.reaped($0, by: cluster) }
        #expect(back, "not every node was ready again")
        #expect(!reapedAny, "\(cluster.watch1.stderr.suffix(2000))\n\(cluster.watch2.stderr.suffix(2000))")
        #expect(load.failed == 0, "\(load.errors)")
        PartitionCluster.report(
            "3-registry", partition: "registry host ↔ everyone, cut 10 s", load: load,
            recovery: "\(recovery) until every node is ready in the registry again",
            guarantee: "routing goes on from the routers' caches; no node reaped; everything resumes",
            held: back && !reapedAny && load.failed == 0
        )
    }

    @Test func theActiveReaperCutFromTheRegistryIsReplacedWithinOneLeaseAndNeverTwoAreActive() async throws {
        let cluster = try await PartitionCluster()
        defer { cluster.close() }
        try await cluster.startNodes()
        try cluster.hosts.cut("watch1", "registry")
        let cut = ContinuousClock.now
        let tookOver = try await cluster.poll(within: 10) { cluster.watch2.stderr.contains("reaper active") }
        let takeover = ContinuousClock.now - cut
        let takeoverText = Self.seconds(since: cut)
        // One lease (3 s) counted from the last renewal before the cut, plus one pass (0.5 s)
        // and this poll's 0.1 s.
        #expect(tookOver && takeover <= .milliseconds(3600), "took over after \(takeoverText)")
        try await Task.sleep(until: cut + .seconds(8))
        try cluster.hosts.heal("watch1", "registry")
        // For 6 s after the heal: watch2 keeps the lease, watch1 never says it is active again,
        // and the registry never shows two reapers that say they are active.
        var mostActive = 0
        let end = ContinuousClock.now + .seconds(6)
        while ContinuousClock.now < end {
            let active = try await cluster.nodes().filter { $0["kind"] == "reaper" && $0["status"] == "ready" && $0["stats"]?["reaper-active"] == 1 }
            mostActive = max(mostActive, active.count)
            try await Task.sleep(for: .milliseconds(300))
        }
        let watch1Active = cluster.watch1.stderr.components(separatedBy: "reaper active").count - 1
        #expect(mostActive == 1, "\(mostActive) reapers said they were active at once")
        #expect(watch1Active == 1, "watch1 became active \(watch1Active) times:\n\(cluster.watch1.stderr.suffix(2000))")
        #expect(cluster.watch1.stderr.contains("reaper on standby"))
        PartitionCluster.report(
            "4-reaper-lease", partition: "active reaper's host ↔ registry, cut 8 s", load: nil,
            recovery: "standby active \(takeoverText) after the cut (lease 3 s); after the heal at most \(mostActive) active",
            guarantee: "the standby takes over within one lease and one pass; never two active reapers",
            held: tookOver && takeover <= .milliseconds(3600) && mostActive == 1 && watch1Active == 1
        )
    }

    /// The flapping case of issue 19: before the rule changed, watch1 reaped east every few
    /// seconds because its own probes failed, while east's heartbeats reached the registry.
    @Test func aReaperCutFromAServiceHostButNotTheRegistryNeverReapsItsHeartbeatingNode() async throws {
        let cluster = try await PartitionCluster()
        defer { cluster.close() }
        try await cluster.startNodes()
        let eastID = try #require(try await cluster.nodeID(at: cluster.hosts.address("east") + ":9000"))
        let finish = try cluster.drive(seconds: 19)
        try await Task.sleep(for: .seconds(2))
        try cluster.hosts.cut("watch1", "east")
        var samples = 0, missing = 0
        let end = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < end {
            samples += 1
            if !(try await cluster.nodes().contains { $0["id"]?.stringValue == eastID && $0["status"] == "ready" }) { missing += 1 }
            try await Task.sleep(for: .milliseconds(250))
        }
        try cluster.hosts.heal("watch1", "east")
        let load = try await finish()
        let reaped = self.reaped(eastID, by: cluster)
        #expect(!reaped, "\(cluster.watch1.stderr.suffix(3000))")
        #expect(missing == 0, "east was missing from \(missing) of \(samples) samples")
        #expect(load.failed == 0, "\(load.errors)")
        PartitionCluster.report(
            "5-reaper-service", partition: "active reaper's host ↔ one service host, cut 15 s", load: load,
            recovery: "nothing to recover: the node was in the registry in \(samples - missing) of \(samples) samples",
            guarantee: "a node whose heartbeats reach the registry is never reaped on one reaper's failed probes",
            held: !reaped && missing == 0 && load.failed == 0
        )
    }

    @Test func theBrokerCutMidStreamLosesNoMessage() async throws {
        let cluster = try await PartitionCluster(broker: true)
        defer { cluster.close() }
        try await cluster.startBroker()
        try await cluster.startNodes()
        let broker = cluster.hosts.address("broker")
        try """
            name: queue
            from:
              - stomp: { url: "stomp://\(broker):61613", destination: /queue/partition, deadLetter: /queue/partition.dead, prefetch: 16 }
            steps:
              - service: uppercase
                timeout: 400ms
                retry: { attempts: 4, backoff: 10ms, max: 50ms }
            """.write(toFile: cluster.scratch + "/Routes/queue.yaml", atomically: true, encoding: .utf8)
        let admin = cluster.hosts.address("edge") + ":9101"
        let initiator = try cluster.sky("edge", ["initiator", "--routes", "Routes", "--admin", admin])
        _ = try await initiator.waitForWord(after: "initiator running")
        let total = 400
        // 40 messages a second for 10 s, published on the broker's own host (its loopback is
        // never cut), each confirmed by a receipt; the broker is cut from everyone at 3 s for 5 s.
        let publish = try cluster.start("broker", [PartitionCluster.python, cluster.stompScript, "publish", "\(total)", "0.025"], log: "publish")
        try await Task.sleep(for: .seconds(3))
        try cluster.hosts.isolate("broker")
        try await Task.sleep(for: .seconds(5))
        try cluster.hosts.rejoin("broker")
        let healed = ContinuousClock.now
        #expect(try await publish.exitStatus(timeout: 90) == 0, "\((try? String(contentsOfFile: cluster.scratch + "/publish.log", encoding: .utf8)) ?? "")")
        let done = try await cluster.poll(within: 60) {
            let (_, vars) = try await cluster.run("edge", ["curl", "-s", "--max-time", "2", "http://\(admin)/debug/vars"])
            let json = try JSONParser.parse(vars)
            return (json["stomp.queue-done"]?.intValue ?? 0) + (json["stomp.queue-failed"]?.intValue ?? 0) >= Int64(total)
        }
        let recovery = Self.seconds(since: healed)
        let (status, output) = try await cluster.run("broker", [PartitionCluster.python, cluster.stompScript, "drain", "\(total)", "60"], timeout: 90)
        #expect(status == 0, "\(output)")
        let summary = try JSONParser.parse(String(output.split(separator: "\n").last ?? ""))
        let replies = Set(summary["replies"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let dead = Set(summary["dead"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let missing = Set((0..<total).map(String.init)).subtracting(replies).subtracting(dead)
        #expect(done, "the initiator did not finish every message")
        #expect(missing.isEmpty, "lost: \(missing.sorted().prefix(20))")
        PartitionCluster.report(
            "6-broker", partition: "STOMP broker's host ↔ everyone, cut 5 s mid-stream (\(total) messages)",
            load: PartitionCluster.Load(answered: replies.count, failed: dead.count, slowestMilliseconds: 0, errors: []),
            recovery: "\(recovery) after the heal until every message was done; \(Int(summary["copies"]?.intValue ?? 0) - replies.count - dead.count) redelivered copies",
            guarantee: "every message answered or dead-lettered, none lost (at least once)", held: done && missing.isEmpty
        )
    }
}
