import Foundation
import NIOCore
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

/// Circuit breakers per service (issue 21): the state machine, and the router failing fast.
@Suite(.timeLimit(.minutes(1)))
struct CircuitBreakerTests {
    static let policy = BreakerPolicy(failures: 3, coolDown: .seconds(10))
    static let down = SkyError(.connectionFailed, "refused", retryable: true)

    @Test func opensAfterFailuresInARowThenOneProbeDecides() {
        let breaker = CircuitBreaker(service: "s", counters: Counters())
        let start = NIODeadline.now()
        // Failures that are not the service's do not count; a success resets the run.
        breaker.record(SkyError(.badRequest, "bad input"), now: start, policy: Self.policy)
        breaker.record(Self.down, now: start, policy: Self.policy)
        breaker.record(Self.down, now: start, policy: Self.policy)
        breaker.record(nil, now: start, policy: Self.policy)
        breaker.record(Self.down, now: start, policy: Self.policy)
        breaker.record(Self.down, now: start, policy: Self.policy)
        #expect(breaker.state == .closed && breaker.permit(now: start, policy: Self.policy) == nil)
        breaker.record(Self.down, now: start, policy: Self.policy)
        #expect(breaker.state == .open)
        // Open: refused, with how long until the probe.
        let refusal = breaker.permit(now: start + .seconds(4), policy: Self.policy)
        #expect(refusal?.code == .circuitOpen && refusal?.message.contains("3 calls failed in a row") == true && refusal?.message.contains("6.0s") == true)
        // After the cool-down exactly one call goes; the others wait for its verdict.
        #expect(breaker.permit(now: start + .seconds(10), policy: Self.policy) == nil)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.permit(now: start + .seconds(10), policy: Self.policy)?.message.contains("a probe call is deciding") == true)
        // The probe fails: open again, for a whole cool-down.
        breaker.record(Self.down, now: start + .seconds(11), policy: Self.policy)
        #expect(breaker.state == .open && breaker.permit(now: start + .seconds(20), policy: Self.policy) != nil)
        // The next probe succeeds: closed.
        #expect(breaker.permit(now: start + .seconds(21), policy: Self.policy) == nil)
        breaker.record(nil, now: start + .seconds(21), policy: Self.policy)
        #expect(breaker.state == .closed && breaker.permit(now: start + .seconds(21), policy: Self.policy) == nil)
        #expect(breaker.rejected.value == 3 && breaker.opened.value == 2)
    }

    @Test func theRouterFailsFastWhileOpenAndProbesAfterTheCoolDown() async throws {
        let healthy = Locked(false)
        let client = ScriptedClient(["pay": { _, _, _ throws(SkyError) in
            guard healthy.withLock({ $0 }) else { throw SkyError(.connectionFailed, "refused", retryable: true) }
            return ServiceResponse(payload: ["paid": true])
        }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("pay")
        try harness.install("name: r\nsteps:\n  - service: pay\n    breaker: { failures: 2, coolDown: 300ms }\n")
        for _ in 0..<2 { await #expect(throws: SkyError.self) { try await harness.run("r", [:]) } }
        #expect(client.calls(to: "pay").count == 2)
        // Open: answered at once, nothing sent.
        do {
            _ = try await harness.run("r", [:])
            Issue.record("the call went through an open circuit")
        } catch {
            #expect(error.code == .circuitOpen, "\(error)")
        }
        #expect(client.calls(to: "pay").count == 2)
        #expect(harness.executor.breakerStates() == ["pay": 2])
        #expect(harness.counters.value("breaker.pay-rejected") == 1)
        // The service recovers; after the cool-down the probe closes the circuit.
        healthy.withLock { $0 = true }
        #expect(await eventually(within: 5) { (try? await harness.run("r", [:]))?.payload == ["paid": true] })
        #expect(harness.executor.breakerStates() == ["pay": 0])
    }
}
