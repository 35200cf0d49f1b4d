import Foundation
import Testing

@testable import Routing
@testable import SkyLib
import RegistryKit

struct InstanceBalancerTests {
    func node(_ id: String, region: String = "eu") -> NodeRecord {
        NodeRecord(id: id, kind: .service, service: "s", region: region, address: "127.0.0.1:1", status: .ready)
    }

    @Test func prefersTheLeastOutstanding() {
        let balancer = InstanceBalancer()
        let nodes = [self.node("a"), self.node("b"), self.node("c")]
        balancer.started("a")
        balancer.started("a")
        balancer.started("b")
        #expect(balancer.choose(from: nodes)?.id == "c")
        balancer.finished("a")
        balancer.finished("a")
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
}
