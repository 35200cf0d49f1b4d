import Foundation
import Synchronization
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel
import RegistryKit
import RegistrySQLite

/// The prompt lane must be a faster way to the same place: for every route it takes, each
/// request's answer or error, and every counter, are what ``RouteRun`` gives. Each case runs
/// the same requests through two routers that differ only in whether their in-process
/// handlers say they complete promptly (the lane) or not (``RouteRun``, each call raced
/// against its deadline).
@Suite(.timeLimit(.minutes(1)))
struct PromptLaneTests {
    /// Handlers whose behaviour the documents choose, so both routers see the same calls.
    static func handlers(prompt: Bool, firstCalls: FirstCalls) -> [String: any ServiceHandler] {
        [
            "upper-node": ClosureHandler(completesPromptly: prompt) { request in
                firstCalls.order.withLock { $0.append("upper") }
                return ServiceResponse(payload: Self.uppercased(request.payload), meta: ["upper": "yes"])
            },
            "count-node": ClosureHandler(completesPromptly: prompt) { request in
                firstCalls.order.withLock { $0.append("count") }
                // Fails on purpose when the document asks, in the ways a service can.
                switch request.payload["fail"]?.stringValue {
                case "COUNT-REJECT"?: throw SkyError(.badRequest, "count refuses this document")
                case "COUNT-ONCE"?:
                    // Retryable, once per document: the retry answers.
                    let first = firstCalls.seen.withLock { $0.insert(request.payload["text"]?.stringValue ?? "").inserted }
                    if first { throw SkyError(.serviceError, "count had a hiccup", retryable: true) }
                case "COUNT-ARRAY"?: return ServiceResponse(payload: [1, 2])
                default: break
                }
                let words = (request.payload["text"]?.stringValue ?? "").split(separator: " ").count
                return ServiceResponse(payload: ["words": .int(Int64(words))])
            },
            "flaky-node": ClosureHandler(completesPromptly: prompt) { request in
                guard request.payload["fail"]?.stringValue != "FLAKY" else { throw SkyError(.serviceError, "flaky failed", retryable: false) }
                return ServiceResponse(payload: ["flaky": "ok"])
            },
            "shout-node": ClosureHandler(completesPromptly: prompt) { request in
                ServiceResponse(payload: ["text": .string((request.payload["text"]?.stringValue ?? "") + "!")])
            },
            "audit-node": ClosureHandler(completesPromptly: prompt) { request in
                guard request.payload["fail"]?.stringValue != "AUDIT" else { throw SkyError(.serviceError, "audit failed") }
                return ServiceResponse(payload: ["audited": true])
            },
        ]
    }

    /// The documents each count fails once for (a retryable failure the retry gets past), and
    /// the services called, in the order they were.
    final class FirstCalls: Sendable {
        let seen = Mutex<Set<String>>([])
        let order = Mutex<[String]>([])
    }

    static func uppercased(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text.uppercased())
        case .object(let fields): .object(fields.mapValues(Self.uppercased))
        case .array(let items): .array(items.map(Self.uppercased))
        default: value
        }
    }

    static let route = """
        name: r
        steps:
          - service: upper
          - service: count
            merge: true
            retry: { attempts: 2, backoff: 1ms }
          - service: flaky
            errOnFail: false
            merge: true
          - service: shout
            when: { path: text, equals: "SHOUT ME" }
          - service: audit
            async: true
        """

    static let documents: [JSONValue] = [
        ["text": "hello big world"],
        ["text": "count refuses", "fail": "count-reject"],
        ["text": "count once", "fail": "count-once"],
        ["text": "merge an array", "fail": "count-array"],
        ["text": "flaky goes on", "fail": "flaky"],
        ["text": "audit fails out of band", "fail": "audit"],
        ["text": "shout me"],
        [1, 2, 3],
    ]

    /// A router whose handlers are prompt or not, with the route installed.
    static func router(prompt: Bool, calls firstCalls: FirstCalls = FirstCalls()) async throws -> RouterHarness {
        let harness = try RouterHarness(client: ScriptedClient([:]), local: LocalHandlers(handlers: Self.handlers(prompt: prompt, firstCalls: firstCalls)))
        for service in ["upper", "count", "flaky", "audit"] { try await harness.addInstance(service, id: "\(service)-node") }
        try await harness.addInstance("shout", id: "shout-node")
        try harness.install(Self.route)
        return harness
    }

    /// What a request came to, comparable across the two routers.
    static func outcome(_ result: Result<RouteResult, SkyError>?) -> String {
        switch result {
        case nil: return "not run"
        case .success(let result)?:
            return "answer \(JSONWriter.string(result.payload)) meta \(result.meta.sorted { $0.key < $1.key }) errors \(result.errors.map { "\($0.service): \($0.code) \($0.message)" })"
        case .failure(let error)?:
            return "error \(error.code.description) route \(error.route ?? "-") step \(error.step.map(String.init) ?? "-") service \(error.service ?? "-"): \(error.message)"
        }
    }

    static func result(_ body: () async throws(SkyError) -> RouteResult) async -> Result<RouteResult, SkyError>? {
        do throws(SkyError) {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    static let counted = [
        "route.r-processed", "route.r-errors", "route.r-inflight", "route.r-async-processed", "route.r-async-errors",
        "step.upper-calls", "step.upper-processed", "step.count-calls", "step.count-processed", "step.count-errors", "step.count-retries",
        "step.flaky-calls", "step.flaky-errors", "step.audit-calls", "step.shout-calls",
    ]

    /// Once both routers' out-of-band audits have ended (while their queues run), every
    /// counter of the route and its steps is the same in both.
    static func expectSameCounts(_ prompt: RouterHarness, _ raced: RouterHarness) async {
        #expect(await eventually {
            prompt.counters.value("route.r-async-processed") + prompt.counters.value("route.r-async-errors") == 5
                && raced.counters.value("route.r-async-processed") + raced.counters.value("route.r-async-errors") == 5
        }, "both routers' out-of-band audits end")
        for name in Self.counted {
            #expect(prompt.counters.value(name) == raced.counters.value(name), "\(name): the lane counted \(prompt.counters.value(name)), RouteRun \(raced.counters.value(name))")
        }
    }

    @Test func theLaneIsTakenOnlyWhereEveryStepIsAPromptInProcessCall() async throws {
        let prompt = try await Self.router(prompt: true)
        let raced = try await Self.router(prompt: false)
        let route = try #require(prompt.executor.route(named: "r"))
        #expect(PromptLane(route: route, executor: prompt.executor)?.stages.map(\.step.service) == ["upper", "count", "flaky", "shout", "audit"])
        #expect(PromptLane(route: route, executor: raced.executor) == nil)
        for (construct, yaml) in [
            ("dedupe", "name: d\ndedupe: { key: text }\nsteps:\n  - service: upper\n"),
            ("a route's rate", "name: d\nrate: { limit: 10, per: 1s }\nsteps:\n  - service: upper\n"),
            ("a step's rate", "name: d\nsteps:\n  - service: upper\n    rate: { limit: 10, per: 1s }\n"),
            ("a breaker", "name: d\nsteps:\n  - service: upper\n    breaker: { failures: 3, coolDown: 1s }\n"),
            ("parallel", "name: d\nsteps:\n  - parallel:\n      branches:\n        a:\n          - service: upper\n"),
            ("a service with no instance", "name: d\nsteps:\n  - service: nowhere\n"),
        ] {
            try prompt.install(yaml)
            let other = try #require(prompt.executor.route(named: "d"))
            #expect(PromptLane(route: other, executor: prompt.executor) == nil, "the lane must not take a route with \(construct)")
        }
    }

    @Test func aRoutesLaneIsMadeOnceAndAgainWhenItsInstancesOrRevisionChange() async throws {
        let prompt = try await Self.router(prompt: true)
        let route = try #require(prompt.executor.route(named: "r"))
        let first = try #require(prompt.executor.lane(for: route))
        #expect(prompt.executor.lane(for: route) === first, "kept between requests")
        // Another instance in the registry: the cache's copy changed, so the lane is made again.
        try await prompt.addInstance("elsewhere")
        let second = try #require(prompt.executor.lane(for: route))
        #expect(second !== first)
        // A reload installs a new revision, with a plan slot of its own.
        try prompt.install(Self.route)
        let reloaded = try #require(prompt.executor.route(named: "r"))
        #expect(reloaded.revision == route.revision + 1)
        let third = try #require(prompt.executor.lane(for: reloaded))
        #expect(third !== second)
        // Its in-process instance gone from the registry: no lane, and the request says why.
        try await prompt.registry.deregister(nodeID: "upper-node")
        await prompt.cache.refresh()
        #expect(prompt.executor.lane(for: reloaded) == nil)
        await #expect(throws: SkyError.self) { try await prompt.run("r", ["text": "no upper"]) }
    }

    @Test func aBatchThroughTheLaneComesToWhatRouteRunGives() async throws {
        let prompt = try await Self.router(prompt: true)
        let raced = try await Self.router(prompt: false)
        let requests = Self.documents.map { RequestEnvelope(route: "r", payload: $0, meta: ["source": "csv"]) }
        let route = try #require(prompt.executor.route(named: "r"))
        let (laneResults, runResults) = try await prompt.withRunning {
            try await raced.withRunning {
                let results = (
                    await prompt.executor.run(batch: requests, on: route, shouldStop: { false }),
                    await raced.executor.run(batch: requests, on: try #require(raced.executor.route(named: "r")), shouldStop: { false })
                )
                await Self.expectSameCounts(prompt, raced)
                return results
            }
        }
        #expect(laneResults.map(Self.outcome) == runResults.map(Self.outcome))
        // The cases fail the ways they are meant to (else the comparison proves little).
        let outcomes = laneResults.map(Self.outcome)
        #expect(outcomes[0] == #"answer {"flaky":"ok","text":"HELLO BIG WORLD","words":3} meta [(key: "source", value: "csv"), (key: "upper", value: "yes")] errors []"#)
        #expect(outcomes[1].hasPrefix("error rejected route r step 2 service count: count refuses this document"))
        #expect(outcomes[2].hasPrefix(#"answer {"fail":"COUNT-ONCE","flaky":"ok","text":"COUNT ONCE","words":2}"#))
        #expect(outcomes[3].hasPrefix("error step_failed route r step 2 service count: merge needs objects"))
        #expect(outcomes[4].contains("errors [\"flaky: service_error flaky failed\"]"))
        #expect(outcomes[7].hasPrefix("error step_failed route r step 2 service count: merge needs objects"))
        #expect(prompt.counters.value("route.r-processed") == 5)
        #expect(prompt.counters.value("step.count-retries") == 1)
    }

    @Test func oneRequestAtATimeGetsTheSameAnswersAndCounts() async throws {
        let prompt = try await Self.router(prompt: true)
        let raced = try await Self.router(prompt: false)
        try await prompt.withRunning {
            try await raced.withRunning {
                for document in Self.documents {
                    let lane = Self.outcome(await Self.result { () async throws(SkyError) in try await prompt.run("r", document) })
                    let run = Self.outcome(await Self.result { () async throws(SkyError) in try await raced.run("r", document) })
                    #expect(lane == run)
                }
                await Self.expectSameCounts(prompt, raced)
            }
        }
        // Failed requests are kept for the dashboard by both.
        #expect(prompt.executor.stats()["failures"]?.arrayValue?.count == raced.executor.stats()["failures"]?.arrayValue?.count)
        #expect(prompt.executor.stats()["failures"]?.arrayValue?.count == 3)
    }

    @Test func aBatchRunsStepByStepAndCountsEveryRequestInTheLatencyHistograms() async throws {
        let calls = FirstCalls()
        let prompt = try await Self.router(prompt: true, calls: calls)
        let route = try #require(prompt.executor.route(named: "r"))
        let requests = (0..<32).map { RequestEnvelope(route: "r", payload: ["text": .string("row \($0)")]) }
        _ = try await prompt.withRunning { await prompt.executor.run(batch: requests, on: route, shouldStop: { false }) }
        let stats = try #require(prompt.executor.stats()["routes"]?.arrayValue?.first)
        func observations(_ latency: JSONValue?) -> Int64 {
            (latency?.arrayValue ?? []).reduce(0) { $0 + ($1.arrayValue?[1].intValue ?? 0) }
        }
        #expect(observations(stats["latency"]) == 32)
        #expect(stats["steps"]?.arrayValue?.map { observations($0["latency"]) } == [32, 32, 32, 0, 32])
        // Each step for the whole batch, then the next: the lane, not a request at a time.
        #expect(calls.order.withLock { $0 } == Array(repeating: "upper", count: 32) + Array(repeating: "count", count: 32))
    }

    @Test func aStopBeforeTheBatchLeavesEveryRequestToRunAgain() async throws {
        let prompt = try await Self.router(prompt: true)
        let route = try #require(prompt.executor.route(named: "r"))
        let requests = (0..<4).map { RequestEnvelope(route: "r", payload: ["text": .string("row \($0)")]) }
        let results = try await prompt.withRunning { await prompt.executor.run(batch: requests, on: route, shouldStop: { true }) }
        #expect(results.map(Self.outcome) == Array(repeating: "not run", count: 4))
        #expect(prompt.counters.value("step.upper-calls") == 0)
        #expect(prompt.counters.value("route.r-processed") == 0)
    }
}
