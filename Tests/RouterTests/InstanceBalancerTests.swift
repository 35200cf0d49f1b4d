import Foundation
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

struct InstanceBalancerTests {
    func node(_ id: String, region: String = "eu") -> NodeRecord {
        NodeRecord(id: id, kind: .service, service: "s", region: region, address: "127.0.0.1:1", status: .ready)
    }

    @Test func prefersTheLeastOutstanding() {
        let balancer = InstanceBalancer()
        let nodes = [self.node("a"), self.node("b"), self.node("c")]
        let first = balancer.started("a"), second = balancer.started("a")
        balancer.started("b")
        #expect(balancer.choose(from: nodes)?.id == "c")
        first.finish()
        second.finish()
        balancer.started("c")
        #expect(balancer.choose(from: nodes)?.id == "a")
    }

    @Test func rotatesTiesPerServiceEvenWhenServicesAlternate() {
        let balancer = InstanceBalancer()
        let nodes = [self.node("a"), self.node("b")]
        var other = self.node("x")
        other.service = "other"
        var chosen: [String] = []
        for _ in 0..<6 {
            chosen += balancer.choose(from: nodes).map { [$0.id] } ?? []
            _ = balancer.choose(from: [other])
        }
        #expect(chosen.filter { $0 == "a" }.count == 3 && chosen.filter { $0 == "b" }.count == 3)
    }

    @Test func prefersLocalThenOwnRegionButFallsBack() {
        let balancer = InstanceBalancer(region: "eu")
        #expect(balancer.choose(from: [self.node("us", region: "us"), self.node("eu")])?.id == "eu")
        #expect(balancer.choose(from: [self.node("us", region: "us")])?.id == "us")
        #expect(balancer.choose(from: [self.node("eu"), self.node("here", region: "us")], isLocal: { $0 == "here" })?.id == "here")
    }

    @Test func avoidsTriedAndQuarantinedInstancesWhileOthersRemain() {
        let balancer = InstanceBalancer(quarantine: 60)
        let nodes = [self.node("a"), self.node("b")]
        #expect(balancer.choose(from: nodes, excluding: ["a"])?.id == "b")
        #expect(balancer.choose(from: [self.node("a")], excluding: ["a"])?.id == "a")
        balancer.markUnreachable("b")
        #expect((0..<5).allSatisfy { _ in balancer.choose(from: nodes)?.id == "a" })
        #expect(balancer.choose(from: [self.node("b")])?.id == "b")
        #expect(balancer.choose(from: []) == nil)
    }

    /// Calls end without the balancer's lock, so counts change while a choice reads them: a
    /// choice must still find an instance (it once read the counts twice and found none, and
    /// the router stopped on a division by zero; seen under the partition tests' load).
    @Test func choicesWhileCallsEndEverywhereAlwaysFindAnInstance() async {
        let balancer = InstanceBalancer()
        let nodes = [self.node("a"), self.node("b"), self.node("c")]
        let chosen = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    // Each task keeps a few calls in flight and ends the oldest, so counts
                    // differ between instances and fall while other tasks choose.
                    var found = 0
                    var inFlight: [InstanceBalancer.InFlight] = []
                    for _ in 0..<50_000 {
                        guard let node = balancer.choose(from: nodes) else { continue }
                        found += 1
                        inFlight.append(balancer.started(node.id))
                        if inFlight.count > 3 { inFlight.removeFirst().finish() }
                    }
                    inFlight.forEach { $0.finish() }
                    return found
                }
            }
            return await group.reduce(0, +)
        }
        #expect(chosen == 200_000)
        #expect(nodes.allSatisfy { balancer.outstanding($0.id) == 0 })
    }

    /// Counts of idle instances are forgotten once the balancer has seen more than it keeps
    /// (DECISIONS.md), but never a count in use: a busy instance keeps its calls in flight.
    @Test func forgettingIdleCountsKeepsBusyOnes() {
        let balancer = InstanceBalancer()
        let busy = balancer.started("busy")
        for index in 0..<(InstanceBalancer.idleCountsKept + 100) {
            balancer.started("idle-\(index)").finish()
        }
        #expect(balancer.outstanding("busy") == 1)
        busy.finish()
        #expect(balancer.outstanding("busy") == 0)
    }
}
