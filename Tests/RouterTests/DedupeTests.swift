import Foundation
import NIOCore
import SkyTestSupport
import Synchronization
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

/// `dedupe:` in the router (issue 21): a key answered once is not run again; a failure keeps
/// nothing; a duplicate that arrives while the first runs waits for its answer.
@Suite(.timeLimit(.minutes(1)))
struct DedupeTests {
    static let route = "name: orders\ndedupe: { key: order.id, for: 1h }\nsteps:\n  - service: charge\n"

    @Test func aKeyAnsweredOnceIsNotChargedAgain() async throws {
        let failNext = Mutex(false)
        let client = ScriptedClient(["charge": { request, _, number throws(SkyError) in
            if failNext.withLock({ $0 }) { throw SkyError(.serviceError, "card declined") }
            return ServiceResponse(payload: ["charged": .int(Int64(number))])
        }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("charge")
        try harness.install(Self.route)
        let first = try await harness.run("orders", ["order": ["id": "o-1"]])
        let again = try await harness.run("orders", ["order": ["id": "o-1"]])
        #expect(first.payload == ["charged": 1] && again.payload == ["charged": 1])
        #expect(again.meta["deduplicated"] == "true" && first.meta["deduplicated"] == nil)
        #expect(client.calls(to: "charge").count == 1)
        #expect(harness.counters.value("dedupe.orders-duplicates") == 1)
        // Numbers are keys too; a request without the key runs, counted.
        _ = try await harness.run("orders", ["order": ["id": 42]])
        _ = try await harness.run("orders", ["order": ["id": 42]])
        _ = try await harness.run("orders", ["order": [:]])
        #expect(client.calls(to: "charge").count == 3 && harness.counters.value("dedupe.orders-keyless") == 1)
        // A failed charge keeps nothing: the retry runs.
        failNext.withLock { $0 = true }
        await #expect(throws: SkyError.self) { try await harness.run("orders", ["order": ["id": "o-2"]]) }
        failNext.withLock { $0 = false }
        #expect(try await harness.run("orders", ["order": ["id": "o-2"]]).meta["deduplicated"] == nil)
    }

    @Test func aDuplicateInFlightWaitsForTheFirstOrGets409() async throws {
        let release = Gate()
        let started = Gate()
        let client = ScriptedClient(["charge": { _, _, _ in
            started.open()
            await release.wait()
            return ServiceResponse(payload: ["charged": true])
        }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("charge")
        try harness.install(Self.route)
        let first = Task { try await harness.run("orders", ["order": ["id": "o-9"]]) }
        await started.wait()
        // HTTP with 150 ms to spare: it cannot wait for the first, so 409.
        var impatient = RequestEnvelope(route: "orders", payload: ["order": ["id": "o-9"]], meta: ["source": "http"])
        impatient.deadline = WallClock.epochMilliseconds() + 150
        do {
            _ = try await harness.executor.run(impatient)
            Issue.record("a duplicate ran beside the first")
        } catch {
            #expect(error.code == .conflict && error.message.contains("order.id = o-9 is still running"), "\(error)")
        }
        // A patient one (a redelivered STOMP message) waits and gets the first answer.
        let patient = Task { try await harness.executor.run(RequestEnvelope(route: "orders", payload: ["order": ["id": "o-9"]], meta: ["source": "stomp"])) }
        release.open()
        #expect(try await first.value.payload == ["charged": true])
        let second = try await patient.value
        #expect(second.payload == ["charged": true] && second.meta["deduplicated"] == "true")
        #expect(client.calls(to: "charge").count == 1)
    }

    /// The registry's dedupe role, failing the first `failures` completions (a registry that
    /// is away for a moment).
    final class FailingCompletions: DedupeStore {
        let base: any DedupeStore
        let failures: Mutex<Int>
        let completions = Mutex(0)

        init(_ base: any DedupeStore, failing failures: Int) {
            self.base = base
            self.failures = Mutex(failures)
        }

        func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
            try await self.base.claimDedupe(route: route, key: key, owner: owner, now: now, expiresAt: expiresAt, runningUntil: runningUntil)
        }

        func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
            try await self.base.renewDedupe(route: route, key: key, owner: owner, runningUntil: runningUntil)
        }

        func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
            self.completions.withLock { $0 += 1 }
            let fail = self.failures.withLock { left in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fail { throw SkyError(.registry, "registry unreachable (test)") }
            try await self.base.completeDedupe(route: route, key: key, owner: owner, answer: answer)
        }

        func releaseDedupe(route: String, key: String, owner: String) async throws {
            try await self.base.releaseDedupe(route: route, key: key, owner: owner)
        }
    }

    /// Issue 32: at most once, whatever the waits. Bulk requests (CSV rows, STOMP messages)
    /// wait for their route's rate without bound; the claim was taken before that wait and
    /// lasted a fixed time whatever the step took, and an answer the registry failed to record
    /// was only logged: a duplicate could run again. Now the rate admits first, the claim is
    /// renewed while the step runs (here 2 s, over three times the claim's 600 ms life) and
    /// while the answer is recorded, and recording is retried (here the first one fails).
    @Test func eachKeyRunsOnceThroughARateASlowStepAndAFailedRecord() async throws {
        let runs = Mutex<[String: Int]>([:])
        let client = ScriptedClient(["charge": { request, _, _ in
            let key = request.payload["order"]?["id"]?.stringValue ?? "?"
            runs.withLock { $0[key, default: 0] += 1 }
            try? await Task.sleep(for: .seconds(2))
            return ServiceResponse(payload: ["charged": .string(key)])
        }])
        let store = Mutex<FailingCompletions?>(nil)
        let harness = try RouterHarness(client: client, dedupeClaimLife: .milliseconds(600)) { base in
            let failing = FailingCompletions(base, failing: 1)
            store.withLock { $0 = failing }
            return failing
        }
        try await harness.addInstance("charge")
        try harness.install("name: orders\nrate: 2/s\ndedupe: { key: order.id, for: 1h }\nsteps:\n  - service: charge\n    timeout: 5s\n")
        let keys = ["k0", "k1", "k2", "k0", "k1", "k2"]
        let results = try await withThrowingTaskGroup(of: RouteResult.self) { group in
            for key in keys {
                group.addTask {
                    try await harness.executor.run(RequestEnvelope(route: "orders", payload: ["order": ["id": .string(key)]], meta: ["source": "csv"]))
                }
            }
            return try await group.reduce(into: [RouteResult]()) { $0.append($1) }
        }
        #expect(runs.withLock { $0 } == ["k0": 1, "k1": 1, "k2": 1], "each key charged once")
        #expect(Set(results.map(\.payload)) == [["charged": "k0"], ["charged": "k1"], ["charged": "k2"]])
        #expect(results.filter { $0.meta["deduplicated"] == "true" }.count == 3)
        #expect(harness.counters.value("dedupe.orders-record-retries") == 1 && harness.counters.value("dedupe.orders-unrecorded") == 0)
        #expect(harness.counters.value("dedupe.orders-claims-lost") == 0)
        #expect((store.withLock { $0 }?.completions.withLock { $0 } ?? 0) == 4, "three answers recorded, one of them on its second try")
    }
}
