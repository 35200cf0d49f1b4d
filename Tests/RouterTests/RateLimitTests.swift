import Foundation
import NIOCore
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

/// Rate limits (issue 21): the limiter's arithmetic on a fixed clock, and the router refusing
/// HTTP requests that cannot wait while bulk requests wait their turn.
@Suite(.timeLimit(.minutes(1)))
struct RateLimitTests {
    @Test func aBurstGoesAtOnceThenOneSlotPerInterval() {
        let limiter = RateLimiter(rate: RateLimit(limit: 10, per: .seconds(1), burst: 3))
        let start = NIODeadline.now()
        // Three at once (the burst), then one every 100 ms.
        for _ in 0..<3 { #expect(limiter.reserve(now: start, maxWait: .zero) == start) }
        #expect(limiter.reserve(now: start, maxWait: .milliseconds(50)) == nil, "the next slot is 100 ms away")
        #expect(limiter.reserve(now: start, maxWait: .seconds(1)) == start + .milliseconds(100))
        #expect(limiter.reserve(now: start, maxWait: nil) == start + .milliseconds(200))
        // A quiet spell refills the burst, never more.
        let later = start + .seconds(10)
        for _ in 0..<3 { #expect(limiter.reserve(now: later, maxWait: .zero) == later) }
        #expect(limiter.reserve(now: later, maxWait: .zero) == nil)
    }

    @Test func httpRequestsThatCannotWaitAreRefusedBulkOnesWait() async throws {
        let client = ScriptedClient(["echo": { request, _, _ in ServiceResponse(payload: request.payload) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("echo")
        // One a second, and a route deadline of 200 ms: the second HTTP request cannot wait.
        try harness.install("name: r\ntimeout: 200ms\nrate: { limit: 1, per: 1s, burst: 1 }\nsteps:\n  - service: echo\n")
        let http = RequestEnvelope(route: "r", payload: ["n": 1], meta: ["source": "http"])
        _ = try await harness.executor.run(http)
        do {
            _ = try await harness.executor.run(http)
            Issue.record("the second request went over the rate")
        } catch {
            #expect(error.code == .rateLimited && error.message.contains("route 'r' is over its rate of 1/1s"), "\(error)")
        }
        #expect(harness.counters.value("rate.route.r-rejected") == 1)

        // Files, CSV rows, STOMP messages wait for their slot instead: slowed, none refused.
        try harness.install("name: r\ntimeout: 200ms\nrate: { limit: 20, per: 1s, burst: 1 }\nsteps:\n  - service: echo\n")
        let answered = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<4 {
                group.addTask { (try? await harness.executor.run(RequestEnvelope(route: "r", payload: ["n": .int(Int64(index))], meta: ["source": "files"]))) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(answered == 4)
        #expect(harness.counters.value("rate.route.r-delayed") >= 3)
    }

    @Test func aStepRateFailsTheStepUnderItsErrOnFail() async throws {
        let client = ScriptedClient(["echo": { request, _, _ in ServiceResponse(payload: request.payload) }, "sms": { _, _, _ in ServiceResponse(payload: ["sent": true]) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("echo")
        try await harness.addInstance("sms")
        try harness.install("name: r\ntimeout: 100ms\nsteps:\n  - service: sms\n    rate: 1/m\n    errOnFail: false\n    merge: true\n  - service: echo\n")
        #expect(try await harness.run("r", ["n": 1]).payload == ["n": 1, "sent": true])
        let second = try await harness.run("r", ["n": 2])
        #expect(second.payload == ["n": 2] && second.errors.map(\.code) == ["rate_limited"], "\(second)")
        #expect(client.calls(to: "sms").count == 1)
    }
}
