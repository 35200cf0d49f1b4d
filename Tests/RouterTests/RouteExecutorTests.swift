import Foundation
import NIOCore
import Synchronization
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit

@Suite(.timeLimit(.minutes(1)))
struct RouteExecutorTests {
    static let upper: ScriptedClient.Behaviour = { request, _, _ throws(SkyError) in
        guard case .string(let text) = request.payload["text"] ?? .null else { throw SkyError(.badRequest, "no text") }
        return ServiceResponse(payload: ["text": .string(text.uppercased())])
    }

    @Test func serialStepsFeedEachOther() async throws {
        let client = ScriptedClient([
            "upper": Self.upper,
            "shout": { request, _, _ in ServiceResponse(payload: ["text": .string((request.payload["text"]?.stringValue ?? "") + "!")]) },
        ])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("upper")
        try await harness.addInstance("shout")
        try harness.install("name: r\nsteps:\n  - service: upper\n  - service: shout\n")
        let result = try await harness.run("r", ["text": "hi"])
        #expect(result.payload == ["text": "HI!"])
        #expect(client.calls(to: "shout").first?.request.payload == ["text": "HI"])
        #expect(harness.counters.value("route.r-processed") == 1)
    }

    @Test func mergeIsShallowAndAdditive() async throws {
        let client = ScriptedClient(["add": { _, _, _ in ServiceResponse(payload: ["b": ["y": 2], "c": 3]) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("add")
        try harness.install("name: r\nsteps:\n  - service: add\n    merge: true\n")
        let result = try await harness.run("r", ["a": 1, "b": ["x": 1]])
        #expect(result.payload == ["a": 1, "b": ["y": 2], "c": 3])
    }

    @Test func mergeNeedsObjects() async throws {
        let client = ScriptedClient(["add": { _, _, _ in ServiceResponse(payload: [1, 2]) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("add")
        try harness.install("name: r\nsteps:\n  - service: add\n    merge: true\n")
        await #expect(throws: SkyError(.stepFailed, "merge needs objects, but the document is object and the output is array", route: "r", step: 1, service: "add")) {
            try await harness.run("r", ["a": 1])
        }
    }

    @Test func asyncStepsAreNeverAwaitedAndGetTheirOwnCopy() async throws {
        let gate = Gate()
        let client = ScriptedClient([
            "upper": Self.upper,
            "audit": { request, _, _ in
                await gate.wait()
                return ServiceResponse(payload: ["audited": true])
            },
        ])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("upper")
        try await harness.addInstance("audit")
        try harness.install("name: r\nsteps:\n  - service: audit\n    async: true\n  - service: upper\n")
        try await harness.withRunning { () async throws in
            // The audit call is blocked on the gate: if the route awaited it, this would hang.
            let result = try await harness.run("r", ["text": "hi"])
            #expect(result.payload == ["text": "HI"])
            #expect(await eventually { client.calls(to: "audit").count == 1 })
            #expect(client.calls(to: "audit")[0].request.payload == ["text": "hi"])
            gate.open()
            #expect(await eventually { harness.counters.value("route.r-async-processed") == 1 })
        }
    }

    @Test func promptInProcessAsyncStepsRunInlineAndRetriesGoToTheQueue() async throws {
        let calls = Locked<[Int]>([])
        let audit = ClosureHandler(completesPromptly: true) { request in
            calls.withLock { $0.append(request.attempt) }
            // The first attempt fails retryably: the retry must happen, from the queue.
            if request.attempt == 1 { throw SkyError(.serviceError, "not yet", retryable: true) }
            return ServiceResponse(payload: nil)
        }
        let harness = try RouterHarness(client: ScriptedClient(["upper": Self.upper]), local: LocalHandlers(handlers: ["audit-1": audit]))
        try await harness.addInstance("upper")
        try await harness.addInstance("audit", id: "audit-1")
        try harness.install("name: r\nsteps:\n  - service: audit\n    async: true\n    retry: { attempts: 2, backoff: 1ms }\n  - service: upper\n")
        // Without the queue running, the inline first attempt has happened when run returns.
        #expect(try await harness.run("r", ["text": "x"]).payload == ["text": "X"])
        #expect(calls.withLock { $0 } == [1])
        #expect(harness.asyncSteps.count == 1)
        try await harness.withRunning { () async throws in
            #expect(await eventually { harness.counters.value("route.r-async-processed") == 1 })
        }
        #expect(calls.withLock { $0 } == [1, 2])
    }

    @Test func asyncStepsAreBoundedAndExtraOnesDroppedAndCounted() async throws {
        let gate = Gate()
        let client = ScriptedClient([
            "upper": Self.upper,
            "audit": { _, _, _ in
                await gate.wait()
                return ServiceResponse(payload: nil)
            },
        ])
        let harness = try RouterHarness(client: client, asyncLimit: 2)
        try await harness.addInstance("upper")
        try await harness.addInstance("audit")
        try harness.install("name: r\nsteps:\n  - service: upper\n  - service: audit\n    async: true\n")
        try await harness.withRunning { () async throws in
            for _ in 0..<5 {
                #expect(try await harness.run("r", ["text": "x"]).payload == ["text": "X"])
            }
            #expect(harness.counters.value("route.r-async-dropped") == 3)
            #expect(harness.asyncSteps.count == 2)
            gate.open()
            #expect(await eventually { harness.asyncSteps.count == 0 })
            #expect(harness.counters.value("route.r-async-processed") == 2)
        }
    }

    @Test func retryableFailuresAreRetriedOnAnotherInstance() async throws {
        let client = ScriptedClient([
            "flaky": { request, _, call throws(SkyError) in
                if call == 1 { throw SkyError(.serviceError, "try later", retryable: true) }
                return ServiceResponse(payload: request.payload)
            }
        ])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("flaky")
        try await harness.addInstance("flaky")
        try harness.install("name: r\nsteps:\n  - service: flaky\n    retry: { attempts: 3, backoff: 1ms, max: 5ms }\n")
        #expect(try await harness.run("r", ["n": 1]).payload == ["n": 1])
        let calls = client.calls(to: "flaky")
        #expect(calls.count == 2)
        #expect(calls[0].instance.id != calls[1].instance.id)
        #expect(calls.map(\.request.attempt) == [1, 2])
        #expect(harness.counters.value("step.flaky-retries") == 1)
    }

    @Test func retriesStopAtTheirLimit() async throws {
        let client = ScriptedClient(["down": { _, _, _ throws(SkyError) in throw SkyError(.serviceError, "still down", retryable: true) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("down")
        try harness.install("name: r\nsteps:\n  - service: down\n    retry: { attempts: 3, backoff: 1ms, max: 2ms }\n")
        await #expect(throws: SkyError(.stepFailed, "still down (after 3 attempts)", route: "r", step: 1, service: "down")) {
            try await harness.run("r", [:])
        }
        #expect(client.calls(to: "down").count == 3)
    }

    /// Issue 17: a request cancelled during a retry's back-off still sent one more attempt
    /// (`try? await Task.sleep` returned at once and the loop went on). Now it stops there.
    @Test func aCancelledRequestSendsNoFurtherAttempt() async throws {
        let firstCall = Latch()
        let client = ScriptedClient(["down": { _, _, _ throws(SkyError) in
            firstCall.open()
            throw SkyError(.serviceError, "down", retryable: true)
        }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("down")
        try harness.install("name: r\nsteps:\n  - service: down\n    retry: { attempts: 5, backoff: 5s, max: 5s }\n")
        let run = Task { try await harness.run("r", [:]) }
        await firstCall.wait()
        run.cancel()
        await #expect(throws: SkyError.self) { try await run.value }
        #expect(client.calls(to: "down").count == 1, "attempts after cancellation: \(client.calls(to: "down").count - 1)")
    }

    @Test func nonRetryableFailuresAreNotRetried() async throws {
        let client = ScriptedClient(["bad": { _, _, _ throws(SkyError) in throw SkyError(.badRequest, "no such field") }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("bad")
        try harness.install("name: r\nsteps:\n  - service: bad\n    retry: { attempts: 5, backoff: 1ms }\n")
        // The service refused the document: rejected (422), not step_failed (502).
        await #expect(throws: SkyError(.rejected, "no such field", route: "r", step: 1, service: "bad")) {
            try await harness.run("r", [:])
        }
        #expect(client.calls(to: "bad").count == 1)
        #expect(harness.counters.value("route.r-errors") == 1)
    }

    @Test func errOnFailFalseRecordsTheErrorAndGoesOn() async throws {
        let client = ScriptedClient([
            "bad": { _, _, _ throws(SkyError) in throw SkyError(.serviceError, "enrich is down") },
            "upper": Self.upper,
        ])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("bad")
        try await harness.addInstance("upper")
        try harness.install("name: r\nsteps:\n  - service: bad\n    errOnFail: false\n  - service: upper\n")
        let result = try await harness.run("r", ["text": "go on"])
        #expect(result.payload == ["text": "GO ON"])
        #expect(result.errors == [StepError(service: "bad", message: "enrich is down", code: "service_error")])
    }

    @Test func theDeadlineTravelsInTheEnvelope() async throws {
        let client = ScriptedClient(["echo": { request, _, _ in ServiceResponse(payload: request.payload) }])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("echo")
        try harness.install("name: r\ntimeout: 2s\nsteps:\n  - service: echo\n  - service: echo\n    timeout: 300ms\n")
        let before = WallClock.epochMilliseconds()
        _ = try await harness.run("r", [:])
        let after = WallClock.epochMilliseconds()
        let deadlines = client.calls(to: "echo").map { $0.request.deadline ?? 0 }
        #expect(deadlines[0] > before && deadlines[0] <= after + 2000)
        #expect(deadlines[1] > before && deadlines[1] <= after + 300)
        let steps = client.calls(to: "echo").map(\.request)
        #expect(steps.allSatisfy { $0.step == "echo" && $0.trace.parentID != nil })
    }

    @Test func aStepTimeoutCutsAHangingCall() async throws {
        let hang = ClosureHandler { _ in
            try await Task.sleep(for: .seconds(30))
            return ServiceResponse(payload: nil)
        }
        let harness = try RouterHarness(client: ScriptedClient([:]), local: LocalHandlers(handlers: ["hang-1": hang]))
        try await harness.addInstance("hang", id: "hang-1")
        try harness.install("name: r\ntimeout: 5s\nsteps:\n  - service: hang\n    timeout: 50ms\n")
        await #expect {
            try await harness.run("r", [:])
        } throws: { error in
            let error = error as? SkyError
            return error?.code == .deadlineExceeded && error?.step == 1 && error?.message.contains("step timeout (50ms)") == true
        }
    }

    @Test func theRouteDeadlineBoundsEveryStep() async throws {
        let quick = ClosureHandler(completesPromptly: true) { request in ServiceResponse(payload: request.payload) }
        let slow = ClosureHandler { request in
            try await Task.sleep(for: .seconds(30))
            return ServiceResponse(payload: request.payload)
        }
        let harness = try RouterHarness(client: ScriptedClient([:]), local: LocalHandlers(handlers: ["quick-1": quick, "slow-1": slow]))
        try await harness.addInstance("quick", id: "quick-1")
        try await harness.addInstance("slow", id: "slow-1")
        try harness.install("name: r\ntimeout: 300ms\nsteps:\n  - service: quick\n  - service: slow\n  - service: quick\n")
        await #expect {
            try await harness.run("r", [:])
        } throws: { error in
            // The second step sleeps past the route's deadline: it is cut there, and named.
            guard let error = error as? SkyError else { return false }
            return error.code == .deadlineExceeded && error.step == 2 && error.message.contains("route deadline")
        }
    }

    @Test func aStuckInProcessStepIsCancelledAtTheRouteDeadline() async throws {
        let stuck = ClosureHandler { request in
            try await Task.sleep(for: .seconds(60))
            return ServiceResponse(payload: request.payload)
        }
        let harness = try RouterHarness(client: ScriptedClient([:]), local: LocalHandlers(handlers: ["stuck-1": stuck]))
        try await harness.addInstance("stuck", id: "stuck-1")
        try harness.install("name: r\ntimeout: 50ms\nsteps:\n  - service: stuck\n")
        let started = ContinuousClock.now
        await #expect(throws: SkyError.self) { try await harness.run("r", [:]) }
        // Answered at the deadline, not after the handler's minute.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func localInstancesAreCalledWithoutTheWire() async throws {
        let client = ScriptedClient(["upper": Self.upper])
        let local = ClosureHandler { request in ServiceResponse(payload: ["local": request.payload]) }
        let harness = try RouterHarness(client: client, local: LocalHandlers(handlers: ["upper-local": local]))
        try await harness.addInstance("upper")
        try await harness.addInstance("upper", id: "upper-local")
        try harness.install("name: r\nsteps:\n  - service: upper\n")
        for _ in 0..<3 {
            #expect(try await harness.run("r", ["text": "x"]).payload == ["local": ["text": "x"]])
        }
        #expect(client.calls(to: "upper").isEmpty)
    }

    @Test func unreachableInstancesAreLeftOutLocally() async throws {
        let refused = Mutex<String?>(nil)
        let client = ScriptedClient([
            "svc": { request, instance, _ throws(SkyError) in
                if instance.id == refused.withLock({ $0 }) {
                    throw SkyError(.connectionFailed, "connection refused", retryable: true)
                }
                return ServiceResponse(payload: request.payload)
            }
        ])
        let harness = try RouterHarness(client: client)
        let a = try await harness.addInstance("svc")
        let b = try await harness.addInstance("svc")
        refused.withLock { $0 = a.id }
        try harness.install("name: r\nsteps:\n  - service: svc\n    retry: { attempts: 2, backoff: 1ms }\n")
        for _ in 0..<6 { _ = try await harness.run("r", [:]) }
        // At most one call reached the refusing instance: after it, the router left it out.
        #expect(client.calls(to: "svc").filter { $0.instance.id == a.id }.count <= 1)
        #expect(client.calls(to: "svc").filter { $0.instance.id == b.id }.count == 6)
    }

    @Test func unknownRoutesAndMissingServicesAreClearErrors() async throws {
        let harness = try RouterHarness(client: ScriptedClient([:]))
        await #expect(throws: SkyError(.routeNotFound, "no route named 'nope'", route: "nope")) {
            try await harness.run("nope", [:])
        }
        try harness.install("name: r\nsteps:\n  - service: ghost\n    version: \"2.*\"\n")
        await #expect {
            try await harness.run("r", [:])
        } throws: { error in
            let error = error as? SkyError
            return error?.code == .stepFailed && error?.message == "no ready instance of service 'ghost' matching version 2.* in the registry"
        }
    }
}

@Suite struct ServerTimingTests {
    @Test func theDurationOfAServerTimingHeaderIsRead() {
        #expect(HTTPServiceClient.duration(fromServerTiming: "handle;dur=12.5") == 0.0125)
        #expect(HTTPServiceClient.duration(fromServerTiming: "db;desc=\"x\", handle; dur=3") == 0.003)
        #expect(HTTPServiceClient.duration(fromServerTiming: "cache;desc=hit") == nil)
    }
}

@Suite struct ServiceCallerTests {
    @Test func aServiceCallsAnotherWithinItsRequestAndRetriesElsewhere() async throws {
        let client = ScriptedClient([
            "flaky": { request, _, call throws(SkyError) in
                if call == 1 { throw SkyError(.serviceError, "try later", retryable: true) }
                return ServiceResponse(payload: ["echo": request.payload])
            }
        ])
        let harness = try RouterHarness(client: client)
        try await harness.addInstance("flaky")
        try await harness.addInstance("flaky")
        let incoming = RequestEnvelope(route: "outer", payload: nil, trace: .root(sampled: true), deadline: WallClock.epochMilliseconds() + 2000)
        let answer = try await harness.caller.call("flaky", payload: ["n": 1], within: incoming)
        #expect(answer.payload == ["echo": ["n": 1]])
        let calls = client.calls(to: "flaky")
        #expect(calls.count == 2 && calls[0].instance.id != calls[1].instance.id)
        // The call joins the request: same id, a child span of its trace, no later deadline.
        for call in calls {
            #expect(call.request.id == incoming.id && call.request.route == "outer")
            #expect(call.request.trace.traceID == incoming.trace.traceID && call.request.trace.parentID == incoming.trace.spanID)
            #expect(call.request.trace.sampled)
            #expect((call.request.deadline ?? .max) <= incoming.deadline!)
        }
        await #expect(throws: SkyError.self) { try await harness.caller.call("missing", payload: nil) }
    }
}
