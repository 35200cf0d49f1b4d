import Foundation
import RegistryKit
import RegistryMemory
import SkyLib
import RouteModel
import Testing

@testable import Routing

/// `sky route test` runs a case through the real executor; a `dedupe:` route goes through the
/// dedupe store it is given (the `sky` tool gives an in-memory registry per case), as on a
/// router.
struct RouteTestRunnerTests {
    static let route = "name: orders\ndedupe: { key: order.id, for: 1h }\nsteps:\n  - service: charge\n"
    static let tests = """
        route: orders
        cases:
          - name: charges once
            input: { order: { id: o-1 } }
            services:
              charge: [ { charged: true } ]
            expect: { charged: true }
          - name: a failed charge
            input: { order: { id: o-2 } }
            services:
              charge: [ { error: service_error } ]
            expectError: step_failed
        """

    @Test func aDedupeRouteRecordsItsKeyInTheStoreItIsGiven() async throws {
        let route = try RouteParser.parse(yaml: Self.route, file: "orders.yaml")
        let file = try RouteTestFile.parse(yaml: Self.tests, file: "orders.test.yaml")
        let stores = Locked<[MemoryRegistry]>([])
        let runner = RouteTestRunner(routes: [route], dedupe: {
            let store = MemoryRegistry(name: "case")
            stores.withLock { $0.append(store) }
            return store
        })
        let outcomes = await runner.run(file)
        #expect(outcomes.map(\.passed) == [true, true], "\(outcomes.map(\.details))")
        let made = stores.withLock { $0 }
        #expect(made.count == 2, "a fresh store for each case")
        // The first case's answer is kept under its key; the failed one keeps nothing.
        let now = Date()
        let kept = try await made[0].claimDedupe(route: "orders", key: "o-1", owner: "probe", now: now, expiresAt: now.addingTimeInterval(60), runningUntil: now.addingTimeInterval(5))
        guard case .done(let answer) = kept else {
            Issue.record("the key was not recorded: \(kept)")
            return
        }
        #expect(answer["payload"] == ["charged": true])
        #expect(try await made[1].claimDedupe(route: "orders", key: "o-2", owner: "probe", now: now, expiresAt: now.addingTimeInterval(60), runningUntil: now.addingTimeInterval(5)) == .claimed)
    }
}
