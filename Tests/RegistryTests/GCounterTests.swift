import Foundation
import Logging
import ServiceLifecycle
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

@testable import RegistryKit
@testable import RegistrySQLite

/// The G-Counter's laws on random replicas, and the publisher that writes a node's counts.
@Suite struct GCounterTests {
    static func random(_ mutator: inout Mutator) -> GCounter {
        var counter = GCounter()
        for _ in 0..<mutator.below(12) {
            counter.merge(name: ["a", "b", "c"][mutator.below(3)], nodeID: "n\(mutator.below(4))", value: Int64(mutator.below(100)))
        }
        return counter
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() {
        var mutator = Mutator(seed: 0x6C0_0001)
        for _ in 0..<500 {
            let (x, y, z) = (Self.random(&mutator), Self.random(&mutator), Self.random(&mutator))
            var xy = x; xy.merge(y)
            var yx = y; yx.merge(x)
            #expect(xy == yx)
            var left = xy; left.merge(z)
            var yz = y; yz.merge(z)
            var right = x; right.merge(yz)
            #expect(left == right)
            var twice = xy; twice.merge(y)
            #expect(twice == xy)
            // The total never falls below either side's: nothing counted is lost.
            for name in ["a", "b", "c"] { #expect(xy.total(name) >= max(x.total(name), y.total(name))) }
        }
    }

    @Test func thePublisherWritesChangesAndALastTimeAtShutdown() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-counts-\(UUID().uuidString)/r.sqlite")
        let counters = Counters()
        let publisher = CountPublisher(store: registry, nodeID: "router-1", counters: counters, interval: .seconds(3600), logger: Logger(label: "test"))
        counters.add("route.text-processed", 3)
        counters.add("route.text-inflight", 2)
        counters.add("files.text-done", 4)
        #expect(try await publisher.publish())
        #expect(try await !publisher.publish(), "nothing changed, nothing written")
        var counts = try await registry.counts()
        #expect(counts.names == ["route.text-processed"] && counts.total("route.text-processed") == 3)
        // Counted after the last interval, written at graceful shutdown.
        counters.add("route.text-processed", 2)
        let group = ServiceGroup(configuration: .init(services: [publisher], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        counts = try await registry.counts()
        #expect(counts.total("route.text-processed") == 5)
    }
}
