import Foundation
import NIOCore
import SkyTestSupport
import Synchronization
import Testing

@testable import Routing
@testable import SkyLib
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
}
