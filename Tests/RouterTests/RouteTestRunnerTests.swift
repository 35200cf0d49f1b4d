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

    /// Faults on the virtual clock: each kind gives the outcome a router would, the calls and the
    /// time are counted, and a case whose statements are wrong fails naming them.
    @Test func faultsRunOnTheVirtualClockAndTheirStatementsAreChecked() async throws {
        let route = try RouteParser.parse(yaml: """
            name: pay
            timeout: 30s
            steps:
              - service: charge
                timeout: 1s
                retry: { attempts: 3, backoff: 100ms, max: 100ms }
              - service: audit
                async: true
              - service: receipt
                errOnFail: false
            """, file: "pay.yaml")
        let file = try RouteTestFile.parse(yaml: """
            route: pay
            cases:
              - name: a reset, a slow call, then the answer
                input: {}
                faults:
                  charge: [ { reset: true }, { delay: 5s } ]
                  audit: [ { hang: true } ]
                  receipt: [ { fail: service_error } ]
                services:
                  charge: [ { charged: true } ]
                expect: { charged: true }
                expectErrors: [ service_error ]
                attempts: { charge: 3, audit: 1, receipt: 1 }
                elapsed: 1200ms
              - name: hangs until the route's deadline
                input: {}
                faults:
                  charge: [ { hang: true }, { hang: true }, { hang: true } ]
                expectError: deadline_exceeded
                elapsed: 3200ms
              - name: says the wrong things
                input: {}
                faults:
                  charge: [ { fail: unavailable, times: 2 } ]
                services:
                  charge: [ { charged: true } ]
                  receipt: [ { charged: true } ]
                expect: { charged: true }
                expectErrors: [ rejected ]
                attempts: { charge: 2 }
                elapsed: 10ms
            """, file: "pay.test.yaml")
        let started = ContinuousClock.now
        let outcomes = await RouteTestRunner(routes: [route]).run(file)
        #expect(ContinuousClock.now - started < .seconds(10), "the faults took real time")
        #expect(outcomes.map(\.passed) == [true, true, false], "\(outcomes.map(\.details))")
        // reset (at once), 100 ms back-off, delay cut at the 1 s step timeout, 100 ms back-off.
        #expect(outcomes[0].elapsed == .milliseconds(1200) && outcomes[0].faulted, "\(outcomes[0].elapsed)")
        // Three attempts, each cut at the step's 1 s timeout, with two 100 ms back-offs.
        #expect(outcomes[1].elapsed == .milliseconds(3200))
        #expect(outcomes[2].details == [
            "expected errors [rejected], got []", "expected 2 call(s) to charge, got 3", "expected at most 10ms, took 200ms (virtual time)",
        ], "\(outcomes[2].details)")
    }

    /// A registry fault reaches what asks the registry while a route runs: a `dedupe:` route
    /// cannot claim its key while it is down.
    @Test func anUnreachableRegistryFailsADedupeRoute() async throws {
        let route = try RouteParser.parse(yaml: Self.route, file: "orders.yaml")
        let file = try RouteTestFile.parse(yaml: """
            route: orders
            cases:
              - name: registry down
                input: { order: { id: o-1 } }
                faults:
                  registry: [ { down: 5s } ]
                services:
                  charge: [ { charged: true } ]
                expectError: registry_error
                attempts: { charge: 0 }
            """, file: "orders.test.yaml")
        let outcomes = await RouteTestRunner(routes: [route], dedupe: { MemoryRegistry(name: "case") }).run(file)
        #expect(outcomes.map(\.passed) == [true], "\(outcomes.map(\.details))")
    }
}
