import Foundation
import NIOCore
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

/// `when:`, `choice:` and `parallel:` in the router (issue 21).
@Suite(.timeLimit(.minutes(1)))
struct RouteConstructsTests {
    static func tag(_ name: String) -> ScriptedClient.Behaviour {
        { request, _, _ in
            guard case .object(var fields) = request.payload else { return ServiceResponse(payload: request.payload) }
            fields[name] = true
            return ServiceResponse(payload: .object(fields))
        }
    }

    static func harness(_ services: [String: ScriptedClient.Behaviour], _ yaml: String) async throws -> (RouterHarness, ScriptedClient) {
        let client = ScriptedClient(services)
        let harness = try RouterHarness(client: client)
        for name in services.keys { try await harness.addInstance(name) }
        try harness.install(yaml)
        return (harness, client)
    }

    @Test func whenSkipsAStepWhoseConditionDoesNotHold() async throws {
        let (harness, client) = try await Self.harness(["vat": Self.tag("vat"), "ship": Self.tag("ship")], """
            name: r
            steps:
              - service: vat
                when: { path: order.country, in: [UK, IE] }
              - service: ship
            """)
        #expect(try await harness.run("r", ["order": ["country": "UK"]]).payload == ["order": ["country": "UK"], "vat": true, "ship": true])
        #expect(try await harness.run("r", ["order": ["country": "FR"]]).payload == ["order": ["country": "FR"], "ship": true])
        #expect(client.calls(to: "vat").count == 1)
    }

    @Test func choiceRunsTheFirstMatchingBranchElseOtherwise() async throws {
        let (harness, client) = try await Self.harness(["review": Self.tag("review"), "approve": Self.tag("approve"), "flag": Self.tag("flag")], """
            name: r
            steps:
              - choice:
                  - when: { path: total, gt: 1000 }
                    steps: [ { service: review } ]
                  - when: { any: [ { path: vip, equals: true }, { path: email, matches: ".*@example\\\\.com" } ] }
                    steps: [ { service: flag }, { service: approve } ]
                  - otherwise: [ { service: approve } ]
            """)
        #expect(try await harness.run("r", ["total": 5000]).payload == ["total": 5000, "review": true])
        #expect(try await harness.run("r", ["total": 10, "vip": true]).payload == ["total": 10, "vip": true, "flag": true, "approve": true])
        #expect(try await harness.run("r", ["total": 10, "email": "a@example.com"]).payload["flag"] == true)
        // A regex matches the whole string only.
        #expect(try await harness.run("r", ["total": 10, "email": "a@example.com.evil"]).payload["flag"] == nil)
        #expect(try await harness.run("r", ["total": 10]).payload == ["total": 10, "approve": true])
        #expect(client.calls(to: "review").count == 1)
        // Every call has its own counters, nested ones too.
        #expect(harness.counters.value("step.approve-calls") == 4)
    }

    @Test func parallelBranchesRunAtOnceOnCopiesAndCollect() async throws {
        let (priceStarted, stockStarted) = (Gate(), Gate())
        let (harness, _) = try await Self.harness([
            // Each waits for the other to have started: run one after the other, this would hang.
            "price": { _, _, _ in
                priceStarted.open()
                await stockStarted.wait()
                return ServiceResponse(payload: ["amount": 12])
            },
            "stock": { _, _, _ in
                stockStarted.open()
                await priceStarted.wait()
                return ServiceResponse(payload: ["left": 3])
            },
        ], """
            name: r
            steps:
              - parallel:
                  join: collect
                  branches:
                    price: [ { service: price } ]
                    stock: [ { service: stock } ]
            """)
        let result = try await harness.run("r", ["sku": "x"])
        #expect(result.payload == ["sku": "x", "price": ["amount": 12], "stock": ["left": 3]])
    }

    @Test func mergeJoinReportsConflictsAndTheLaterBranchWins() async throws {
        let (harness, _) = try await Self.harness([
            "a": { _, _, _ in ServiceResponse(payload: ["sku": "x", "status": "cheap", "a": 1]) },
            "b": { _, _, _ in ServiceResponse(payload: ["sku": "x", "status": "scarce", "b": 2]) },
        ], """
            name: r
            steps:
              - parallel:
                  branches:
                    first: [ { service: a } ]
                    second: [ { service: b } ]
            """)
        let result = try await harness.run("r", ["sku": "x"])
        #expect(result.payload == ["sku": "x", "status": "scarce", "a": 1, "b": 2])
        #expect(result.errors.map(\.code) == ["merge_conflict"])
        #expect(result.errors.first?.message.contains("'first' and 'second' both set 'status'") == true)
    }

    @Test func aFailedBranchFollowsItsErrOnFailAndTheJoinNeverHangs() async throws {
        let (harness, _) = try await Self.harness([
            "ok": { _, _, _ in ServiceResponse(payload: ["ok": true]) },
            "broken": { _, _, _ throws(SkyError) in throw SkyError(.serviceError, "out of stock", retryable: false) },
        ], """
            name: r
            steps:
              - parallel:
                  join: collect
                  branches:
                    fine: [ { service: ok } ]
                    soft: [ { service: broken, errOnFail: false } ]
            """)
        // A branch step that may fail: recorded, the branch goes on with its document.
        let soft = try await harness.run("r", ["n": 1])
        #expect(soft.payload["fine"] == ["ok": true] && soft.errors.map(\.service) == ["broken"])

        try harness.install("""
            name: r
            steps:
              - parallel:
                  branches:
                    fine: [ { service: ok } ]
                    hard: [ { service: broken } ]
            """)
        await #expect(throws: SkyError.self) { try await harness.run("r", ["n": 1]) }
        do {
            _ = try await harness.run("r", ["n": 1])
        } catch {
            #expect(error.message.contains("branch 'hard'") && error.message.contains("out of stock") && error.step == 1, "\(error)")
        }

        // A hanging branch (in-process, where the router itself enforces deadlines) is cut by
        // the step's timeout; the join answers.
        let hang = ClosureHandler { _ in
            try await Task.sleep(for: .seconds(30))
            return ServiceResponse(payload: [:])
        }
        let cutting = try RouterHarness(client: ScriptedClient(["ok": { _, _, _ in ServiceResponse(payload: ["ok": true]) }]), local: LocalHandlers(handlers: ["hang-1": hang]))
        try await cutting.addInstance("ok")
        try await cutting.addInstance("hangs", id: "hang-1")
        try cutting.install("""
            name: r
            steps:
              - timeout: 200ms
                errOnFail: false
                parallel:
                  branches:
                    fine: [ { service: ok } ]
                    slow: [ { service: hangs } ]
              - service: ok
            """)
        let started = ContinuousClock.now
        let cut = try await cutting.run("r", ["n": 1])
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(cut.payload == ["ok": true] && cut.errors.first?.code == "deadline_exceeded", "\(cut)")
    }
}
