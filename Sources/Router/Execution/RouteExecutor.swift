import Foundation
public import Logging
import NIOCore
public import SkyLib
public import RouteModel
public import RegistryKit

/// Runs routes: the router's heart, and the ``RouteRunner`` initiators hand requests to.
///
/// The executor holds what every request shares (the route table, the dispatcher, breakers,
/// rate limits, dedupe, counters, spans); a request's walk through its steps is a
/// ``RouteRun``, one step's attempts ``StepAttempts``, a `parallel:` step's join
/// ``ParallelJoin``, a dedupe route's claim ``DedupeGate``.
///
/// For each step, in order: a serial step's output becomes the document (or is shallow-merged
/// into it with `merge: true`); an `async: true` step gets its own copy and is never awaited;
/// retryable failures are retried with exponential backoff and jitter, each time on another
/// instance when there is one; every attempt runs under the step's timeout and the route's
/// deadline, and the deadline travels in the envelope. A final failure stops the route, unless
/// the step says `errOnFail: false`: then it is recorded in `errors` and the route goes on.
public final class RouteExecutor: RouteRunner, Sendable {
    /// Where routes are looked up.
    public let table: RouteTable
    /// Picks an instance and calls it (a ``ServiceDispatcher``; a scripted one in route tests).
    let dispatcher: any StepDispatching
    /// Runs out-of-band steps, bounded.
    let asyncSteps: AsyncStepQueue
    /// Each route's counters and histograms, made once per route revision.
    private let instruments: RouteInstrumentsCache
    /// The last failed requests, for the dashboard.
    private let failures = RecentFailures()
    /// This router's circuit breakers, by service (steps that set `breaker:` use them).
    let breakers: CircuitBreakers
    /// One step's attempts: breaker, dispatch, retries.
    let attempts: StepAttempts
    /// This router's rate limits, by route and by step.
    let limiters: RateLimiters
    /// Where routes with `dedupe:` keep the keys they have seen (the registry, shared by every
    /// router); `nil` runs such routes without deduplicating.
    private let dedupeStore: (any DedupeStore)?
    /// How long a dedupe claim lasts unless renewed. Its request renews it every third of that
    /// while it runs (and while its answer is being recorded), so a slow request keeps its key
    /// however long it takes, and a router that died holds one for at most this long.
    public let dedupeClaimLife: Duration
    /// How long recording a dedupe answer is retried (the claim kept meanwhile) before the
    /// router gives up, logs an error and counts `dedupe.ROUTE-unrecorded`.
    public let dedupeRecordLimit: Duration
    /// The process's counters (dedupe's and rate limits' are named per route).
    private let counters: Counters
    /// Where spans of sampled requests go; `nil` records none.
    let spans: RouteSpans
    /// The router's logger; a request's lines go through a ``RequestLogger``.
    let logger: Logger
    /// Deadline of routes that set no `timeout`.
    public let defaultTimeout: Duration
    /// Decides which new requests are traced (initiators draw root traces from it).
    public let sampler: TraceSampler
    /// Where deadlines are read and back-offs waited: the system's clock, or a route test's
    /// virtual one.
    public let clock: RouteClock

    /// Creates a `RouteExecutor` from its parts.
    /// - Parameter clock: the system's unless a route test runs it on a virtual one.
    public init(
        table: RouteTable,
        dispatcher: any StepDispatching,
        asyncSteps: AsyncStepQueue,
        counters: Counters,
        defaultTimeout: Duration = .seconds(30),
        spans: SpanRecorder? = nil,
        sampler: TraceSampler = TraceSampler(perSecond: 100),
        dedupe: (any DedupeStore)? = nil,
        dedupeClaimLife: Duration = .seconds(10),
        dedupeRecordLimit: Duration = .seconds(30),
        clock: RouteClock = .system,
        logger: Logger
    ) {
        self.clock = clock
        self.dedupeStore = dedupe
        self.dedupeClaimLife = dedupeClaimLife
        self.dedupeRecordLimit = dedupeRecordLimit
        self.counters = counters
        self.spans = RouteSpans(recorder: spans)
        self.sampler = sampler
        self.table = table
        self.dispatcher = dispatcher
        self.asyncSteps = asyncSteps
        self.instruments = RouteInstrumentsCache(counters: counters)
        self.breakers = CircuitBreakers(counters: counters)
        self.attempts = StepAttempts(dispatcher: dispatcher, breakers: self.breakers, spans: RouteSpans(recorder: spans), clock: clock)
        self.limiters = RateLimiters(counters: counters)
        self.defaultTimeout = defaultTimeout
        self.logger = logger
    }

    public func routeSummaries() -> [RouteSummary] { self.table.summaries }

    public func routeProblems() -> [RouteProblem] { self.table.problems }

    public var routeSource: String { self.table.source }

    /// Cumulative per-route and per-step counts and latency histograms (`GET /debug/stats`):
    /// `{"routes": [{"route", "processed", "errors", "inflight", "asyncDropped", "latency",
    /// "steps": [{"service", "calls", "errors", "retries", "latency"}]}], "bucketsMicroseconds"}`,
    /// each `latency` sparse `[[bucket, count], …]` over ``LatencyHistogram/bounds``; and
    /// `"failures"`: the last 20 failed requests, newest first (`at`, `route`, `step`,
    /// `service`, `code`, `message`, `traceId`); `"problems"`: route files refused at their last
    /// load (``RouteProblem``).
    public func stats() -> JSONValue {
        guard case .object(var fields) = self.instruments.stats() else { return .null }
        fields["failures"] = self.failures.json
        fields["problems"] = .array(self.table.problems.map(\.json))
        return .object(fields)
    }

    public func route(named name: String) -> Route? { self.table.route(named: name) }

    /// Each circuit breaker's state, by service: 0 closed, 1 half-open, 2 open (for
    /// `/debug/vars`, `/metrics` and the router's node stats).
    public func breakerStates() -> [String: Int64] { self.breakers.states }

    public func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        guard let route = self.table.route(named: request.route) else {
            throw SkyError(.routeNotFound, "no route named '\(request.route)'", route: request.route)
        }
        return try await self.run(request, on: route)
    }

    public func run(_ request: RequestEnvelope, on route: Route) async throws(SkyError) -> RouteResult {
        if !request.trace.sampled, let lane = self.lane(for: route) {
            let results = await lane.run([request], route: route, executor: self)
            return try results[0].get()
        }
        if let policy = route.dedupe, let store = self.dedupeStore {
            guard let value = policy.key.value(in: request.payload), value != .null else {
                // No key, nothing to deduplicate on: it runs, and is counted.
                self.counters.add("dedupe.\(route.name)-keyless")
                return try await self.runOnce(route, request: request)
            }
            let gate = DedupeGate(store: store, claimLife: self.dedupeClaimLife, recordLimit: self.dedupeRecordLimit, counters: self.counters, logger: self.logger)
            return try await gate.run(
                route, policy: policy, key: value.stringValue ?? JSONWriter.string(value), request: request, timeout: route.timeout ?? self.defaultTimeout,
                admit: { () async throws(SkyError) in try await self.limiters.admit(route, request: request, defaultTimeout: self.defaultTimeout) },
                body: { () async throws(SkyError) -> RouteResult in try await self.runAdmitted(route, request: request) }
            )
        }
        return try await self.runOnce(route, request: request)
    }

    /// Runs a batch through the route's ``PromptLane`` when it has one (sampled requests, whose
    /// calls are timed one by one for their spans, go through ``RouteRun``); otherwise one
    /// request after another.
    public func run(batch requests: [RequestEnvelope], on route: Route, shouldStop: () -> Bool) async -> [Result<RouteResult, SkyError>?] {
        guard let lane = self.lane(for: route) else {
            return await Self.runEach(requests, shouldStop: shouldStop) { request async throws(SkyError) in try await self.run(request, on: route) }
        }
        // The lane's calls end at once: a stop lets the batch in hand finish, as a request in
        // hand would.
        guard !shouldStop() else { return requests.map { _ in nil } }
        guard requests.contains(where: \.trace.sampled) else { return await lane.run(requests, route: route, executor: self) }
        let plain = requests.indices.filter { !requests[$0].trace.sampled }
        var results = [Result<RouteResult, SkyError>?](repeating: nil, count: requests.count)
        for (index, result) in zip(plain, await lane.run(plain.map { requests[$0] }, route: route, executor: self)) { results[index] = result }
        for index in requests.indices where requests[index].trace.sampled {
            do throws(SkyError) {
                results[index] = .success(try await self.run(requests[index], on: route))
            } catch {
                results[index] = .failure(error)
            }
        }
        return results
    }

    public func runsPromptly(_ route: Route) -> Bool {
        self.lane(for: route) != nil
    }

    /// The route's ``PromptLane``, made once per revision and registry cache generation and
    /// kept in the route's plan slot; `nil` when the route cannot take it.
    func lane(for route: Route) -> PromptLane? {
        route.plan.plan(for: RoutePlanSlot.Key(owner: ObjectIdentifier(self), generation: self.dispatcher.instancesGeneration)) {
            PromptLane(route: route, executor: self)
        }
    }

    /// The route's counters and histograms (made once per revision of its steps).
    func instruments(for route: Route) -> RouteInstruments {
        self.instruments.instruments(for: route)
    }

    /// Keeps a failed request for the dashboard's recent failures.
    func recordFailure(_ error: SkyError, route: Route, request: RequestEnvelope) {
        self.failures.add(.init(at: Date(), route: route.name, error: error, traceID: request.trace.traceID))
    }

    /// Runs a request once: rate limit, steps, counters, spans.
    private func runOnce(_ route: Route, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        try await self.limiters.admit(route, request: request, defaultTimeout: self.defaultTimeout)
        return try await self.runAdmitted(route, request: request)
    }

    /// Runs a request the rate admitted: steps, counters, spans.
    private func runAdmitted(_ route: Route, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        let instruments = self.instruments.instruments(for: route)
        instruments.started(source: request.meta["source"])
        let started = ContinuousClock.now
        let startDate = request.trace.sampled ? Date() : nil
        do {
            let result = try await RouteRun(executor: self, route: route, request: request, instruments: instruments).execute()
            let elapsed = ContinuousClock.now - started
            instruments.finished(after: elapsed, succeeded: true)
            self.spans.recordRoute(route, request: request, start: startDate, elapsed: elapsed, error: nil)
            return result
        } catch {
            let elapsed = ContinuousClock.now - started
            if Task.isCancelled {
                // Cut short by a stop past the drain limit: not the route's failure (the
                // initiator leaves its input to run again), so not counted or shown as one.
                let interrupted = SkyError(.cancelled, "interrupted before the route finished (the process is stopping): \(error.message)", route: route.name)
                instruments.interrupted()
                self.spans.recordRoute(route, request: request, start: startDate, elapsed: elapsed, error: interrupted)
                throw interrupted
            }
            instruments.finished(after: elapsed, succeeded: false)
            self.spans.recordRoute(route, request: request, start: startDate, elapsed: elapsed, error: error)
            self.recordFailure(error, route: route, request: request)
            throw error
        }
    }
}
