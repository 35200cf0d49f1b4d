import Foundation
public import Logging
import NIOCore
public import SkyLib
public import RegistryKit

/// Runs routes: the router's heart, and the ``RouteRunner`` initiators hand requests to.
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
    private let dispatcher: any StepDispatching
    private let asyncSteps: AsyncStepQueue
    private let instruments: RouteInstrumentsCache
    private let failures = RecentFailures()
    /// This router's circuit breakers, by service (steps that set `breaker:` use them).
    private let breakers: CircuitBreakers
    /// This router's rate limits, by route and by step.
    private let limiters: RateLimiters
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
    private let counters: Counters
    /// Where spans of sampled requests go; `nil` records none.
    private let spans: SpanRecorder?
    private let logger: Logger
    /// Deadline of routes that set no `timeout`.
    public let defaultTimeout: Duration
    /// Decides which new requests are traced (initiators draw root traces from it).
    public let sampler: TraceSampler

    /// Creates a `RouteExecutor` from its parts.
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
        logger: Logger
    ) {
        self.dedupeStore = dedupe
        self.dedupeClaimLife = dedupeClaimLife
        self.dedupeRecordLimit = dedupeRecordLimit
        self.counters = counters
        self.spans = spans
        self.sampler = sampler
        self.table = table
        self.dispatcher = dispatcher
        self.asyncSteps = asyncSteps
        self.instruments = RouteInstrumentsCache(counters: counters)
        self.breakers = CircuitBreakers(counters: counters)
        self.limiters = RateLimiters(counters: counters)
        self.defaultTimeout = defaultTimeout
        self.logger = logger
    }

    public func routeSummaries() -> [RouteSummary] { self.table.summaries }

    /// Cumulative per-route and per-step counts and latency histograms (`GET /debug/stats`):
    /// `{"routes": [{"route", "processed", "errors", "inflight", "asyncDropped", "latency",
    /// "steps": [{"service", "calls", "errors", "retries", "latency"}]}], "bucketsMicroseconds"}`,
    /// each `latency` sparse `[[bucket, count], …]` over ``LatencyHistogram/bounds``; and
    /// `"failures"`: the last 20 failed requests, newest first (`at`, `route`, `step`,
    /// `service`, `code`, `message`, `traceId`).
    public func stats() -> JSONValue {
        guard case .object(var fields) = self.instruments.stats() else { return .null }
        fields["failures"] = self.failures.json
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
        if let policy = route.dedupe, let store = self.dedupeStore {
            guard let value = policy.key.value(in: request.payload), value != .null else {
                // No key, nothing to deduplicate on: it runs, and is counted.
                self.counters.add("dedupe.\(route.name)-keyless")
                return try await self.runOnce(route, request: request)
            }
            return try await self.deduplicated(route, policy: policy, key: value.stringValue ?? JSONWriter.string(value), store: store, request: request)
        }
        return try await self.runOnce(route, request: request)
    }

    /// An idempotent consumer's request: the first with its key runs and its answer is kept;
    /// a later one within the window gets that answer; one that arrives while the first runs
    /// waits for it — an HTTP request until its deadline (then 409 `conflict`), a bulk one
    /// until the first is answered or its claim lapses (its router died), then it runs.
    /// A failed run keeps nothing, so a retry runs again. When the registry cannot be
    /// reached the request fails (503) rather than risk running twice.
    ///
    /// At most once: the request is admitted by the route's rate first (a bulk request may
    /// wait there without bound, which must not eat its claim's life), the claim is renewed
    /// while the steps run and while the answer is recorded, and recording is retried until
    /// it holds (or, after ``dedupeRecordLimit``, an error is logged and counted).
    private func deduplicated(_ route: Route, policy: DedupePolicy, key: String, store: any DedupeStore, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        try await self.admit(route, request: request)
        let owner = Identifiers.requestID()
        let timeout = route.timeout ?? self.defaultTimeout
        let bulk = request.isFromBulkInitiator
        let waitUntil = ContinuousClock.now + (request.remainingMilliseconds.map { min(timeout, .milliseconds($0)) } ?? timeout)
        var pause = Duration.milliseconds(20)
        while true {
            let now = Date()
            let claim: DedupeClaim
            do {
                claim = try await store.claimDedupe(
                    route: route.name, key: key, owner: owner, now: now, expiresAt: now.addingTimeInterval(policy.window.seconds),
                    runningUntil: now.addingTimeInterval(self.dedupeClaimLife.seconds)
                )
            } catch {
                throw SkyError(.registry, "route '\(route.name)' deduplicates on \(policy.key), and the registry could not be asked: \(error)", retryable: true, route: route.name)
            }
            switch claim {
            case .claimed:
                let result: RouteResult
                do {
                    result = try await self.holdingClaim(route: route.name, key: key, owner: owner, store: store) { () async throws(SkyError) -> RouteResult in
                        try await self.runAdmitted(route, request: request)
                    }
                } catch {
                    try? await store.releaseDedupe(route: route.name, key: key, owner: owner)
                    throw error
                }
                _ = try? await self.holdingClaim(route: route.name, key: key, owner: owner, store: store) { () async throws(SkyError) -> Bool in
                    await self.recordDedupe(result, route: route.name, key: key, owner: owner, store: store)
                    return true
                }
                return result
            case .done(let answer):
                self.counters.add("dedupe.\(route.name)-duplicates")
                var result = RouteResult(json: answer)
                result.meta["deduplicated"] = "true"
                return result
            case .running:
                guard bulk || ContinuousClock.now + pause < waitUntil else {
                    self.counters.add("dedupe.\(route.name)-conflicts")
                    throw SkyError(.conflict, "a request with \(policy.key) = \(key) is still running on route '\(route.name)'; ask again once it is answered", route: route.name)
                }
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    throw SkyError(.conflict, "cancelled while a request with \(policy.key) = \(key) was running", route: route.name)
                }
                pause = min(pause * 2, .milliseconds(500))
            }
        }
    }

    /// Runs `body` while renewing the dedupe claim `owner` holds on `key`, every third of the
    /// claim's life. A renewal the registry refuses (the claim was lost: the registry was away
    /// longer than its life and another router took the key) is logged and counted
    /// (`dedupe.ROUTE-claims-lost`); one that cannot reach the registry is tried again at the
    /// next turn.
    private func holdingClaim<T: Sendable>(
        route: String, key: String, owner: String, store: any DedupeStore, _ body: @escaping @Sendable () async throws(SkyError) -> T
    ) async throws(SkyError) -> T {
        let life = self.dedupeClaimLife
        let outcome = await withTaskGroup(of: Result<T, SkyError>?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: life / 3)
                    } catch {
                        return nil
                    }
                    guard let held = try? await store.renewDedupe(route: route, key: key, owner: owner, runningUntil: Date().addingTimeInterval(life.seconds)) else { continue }
                    if !held {
                        self.counters.add("dedupe.\(route)-claims-lost")
                        self.logger.warning("dedupe claim lost while its request ran; a duplicate may run beside it", metadata: ["route": "\(route)", "key": "\(key)"])
                        return nil
                    }
                }
                return nil
            }
            group.addTask {
                do throws(SkyError) {
                    return .success(try await body())
                } catch {
                    return .failure(error)
                }
            }
            while let finished = await group.next() {
                guard let finished else { continue }
                group.cancelAll()
                return finished
            }
            return Result<T, SkyError>.failure(SkyError(.internal, "dedupe: the request ended without an outcome"))
        }
        return try outcome.get()
    }

    /// Records the answer of a dedupe claim, trying again (100 ms doubling to 2 s) until the
    /// registry has it; after ``dedupeRecordLimit`` it gives up loudly: an error logged and
    /// `dedupe.ROUTE-unrecorded` counted (a duplicate arriving once the claim lapses would run).
    private func recordDedupe(_ result: RouteResult, route: String, key: String, owner: String, store: any DedupeStore) async {
        let giveUp = ContinuousClock.now + self.dedupeRecordLimit
        var pause = Duration.milliseconds(100)
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await store.completeDedupe(route: route, key: key, owner: owner, answer: result.json)
                if attempts > 1 { self.logger.notice("dedupe answer recorded after \(attempts) attempts", metadata: ["route": "\(route)", "key": "\(key)"]) }
                return
            } catch {
                if attempts == 1 { self.counters.add("dedupe.\(route)-record-retries") }
                guard ContinuousClock.now + pause < giveUp, !Task.isCancelled else {
                    self.counters.add("dedupe.\(route)-unrecorded")
                    self.logger.error(
                        "dedupe answer not recorded after \(attempts) attempts; a duplicate arriving once the claim lapses will run again",
                        metadata: ["route": "\(route)", "key": "\(key)", "error": "\(error)"]
                    )
                    return
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// Waits for the route's rate (when it has one) to admit the request: before the route's
    /// clock starts, since waiting for a slot is not running the route.
    private func admit(_ route: Route, request: RequestEnvelope) async throws(SkyError) {
        guard let rate = route.rate else { return }
        let deadline = NIODeadline.now() + TimeAmount(route.timeout ?? self.defaultTimeout)
        let caller = request.remainingMilliseconds.map { NIODeadline.now() + .milliseconds($0) }
        try await self.limiters.admit("route.\(route.name)", what: "route '\(route.name)'", rate: rate, request: request, deadline: min(deadline, caller ?? deadline))
    }

    /// Runs a request once: rate limit, steps, counters, spans.
    private func runOnce(_ route: Route, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        try await self.admit(route, request: request)
        return try await self.runAdmitted(route, request: request)
    }

    /// Runs a request the rate admitted: steps, counters, spans.
    private func runAdmitted(_ route: Route, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        let instruments = self.instruments.instruments(for: route)
        instruments.started(source: request.meta["source"])
        let started = ContinuousClock.now
        let startDate = request.trace.sampled ? Date() : nil
        do {
            let result = try await self.execute(route, instruments: instruments, request: request)
            let elapsed = ContinuousClock.now - started
            instruments.finished(after: elapsed, succeeded: true)
            self.recordRouteSpan(route, request: request, start: startDate, elapsed: elapsed, error: nil)
            return result
        } catch {
            let elapsed = ContinuousClock.now - started
            if Task.isCancelled {
                // Cut short by a stop past the drain limit: not the route's failure (the
                // initiator leaves its input to run again), so not counted or shown as one.
                let interrupted = SkyError(.cancelled, "interrupted before the route finished (the process is stopping): \(error.message)", route: route.name)
                instruments.interrupted()
                self.recordRouteSpan(route, request: request, start: startDate, elapsed: elapsed, error: interrupted)
                throw interrupted
            }
            instruments.finished(after: elapsed, succeeded: false)
            self.recordRouteSpan(route, request: request, start: startDate, elapsed: elapsed, error: error)
            self.failures.add(.init(at: Date(), route: route.name, error: error, traceID: request.trace.traceID))
            throw error
        }
    }

    /// The route's span is the trace's root span of this request (the initiator's span id).
    private func recordRouteSpan(_ route: Route, request: RequestEnvelope, start: Date?, elapsed: Duration, error: SkyError?) {
        guard let spans = self.spans, let start else { return }
        spans.record(Span(
            traceID: request.trace.traceID, spanID: request.trace.spanID, parentID: request.trace.parentID, kind: .route,
            name: route.name, route: route.name, recorder: spans.recorder, host: spans.host,
            start: start, duration: elapsed.seconds, error: error?.message
        ))
    }

    /// A service that is not a Swift `ServiceHost` (which records its own span) can still
    /// show its time in the trace with a `Server-Timing: …;dur=MS` header; the router records
    /// that span on its behalf, under the call.
    private func recordServiceSpan(_ step: RouteStep, call: RequestEnvelope, start: Date?, duration: Double, instance: NodeRecord) {
        guard let spans = self.spans, let start else { return }
        spans.record(Span(
            traceID: call.trace.traceID, spanID: Identifiers.spanID(), parentID: call.trace.spanID, kind: .service,
            name: step.service, route: call.route, recorder: instance.id, host: instance.host,
            address: instance.address, attempt: call.attempt, start: start, duration: duration
        ))
    }

    private func recordCallSpan(
        _ step: RouteStep, call: RequestEnvelope, parent: TraceContext, start: Date?, elapsed: Duration,
        instance: String?, address: String?, error: SkyError?
    ) {
        guard let spans = self.spans, let start else { return }
        spans.record(Span(
            traceID: call.trace.traceID, spanID: call.trace.spanID, parentID: parent.spanID, kind: .call,
            name: step.service, route: call.route, recorder: spans.recorder, host: spans.host,
            instance: instance, address: address, attempt: call.attempt, start: start, duration: elapsed.seconds, error: error?.message
        ))
    }

    /// What the steps work on: the document, the envelope's meta, and the errors recorded by
    /// steps that may fail (`errOnFail: false`).
    struct Flow: Sendable {
        var document: JSONValue
        var meta: [String: String]
        var errors: [StepError] = []
    }

    /// Runs the steps. There is no race around the whole route: every call that can wait
    /// carries the deadline itself (remote calls in the HTTP client, in-process handlers that
    /// do not complete promptly in a race of their own, retry back-off checked against it), so
    /// a request costs no extra tasks or timers for its deadline (BENCHMARKS.md).
    private func execute(_ route: Route, instruments: RouteInstruments, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        // The route's deadline: its timeout, or the caller's deadline when that is sooner.
        var deadline = NIODeadline.now() + TimeAmount(route.timeout ?? self.defaultTimeout)
        if let remaining = request.remainingMilliseconds {
            deadline = min(deadline, .now() + .milliseconds(remaining))
        }
        var flow = Flow(document: request.payload, meta: request.meta)
        let logger = RequestLogger(base: self.logger, requestID: request.id, route: route.name)
        try await self.run(route.steps, route: route, flow: &flow, deadline: deadline, instruments: instruments, request: request, logger: logger)
        return RouteResult(payload: flow.document, meta: flow.meta, errors: flow.errors)
    }

    /// Runs `steps` in order on `flow`. Nested steps (a choice's branch, a parallel branch)
    /// report under the number of the top-level step that holds them (`topNumber`).
    private func run(
        _ steps: [RouteStep], route: Route, flow: inout Flow, deadline: NIODeadline, instruments: RouteInstruments,
        request: RequestEnvelope, logger: RequestLogger, topNumber: Int? = nil
    ) async throws(SkyError) {
        for (index, step) in steps.enumerated() {
            let number = topNumber ?? index + 1
            if let when = step.when, !when.holds(for: flow.document) { continue }
            switch step.action {
            case .call:
                try await self.call(step, number: number, route: route, flow: &flow, deadline: deadline, instruments: instruments, request: request, logger: logger)
            case .choice(let branches, let otherwise):
                guard let chosen = branches.first(where: { $0.when.holds(for: flow.document) })?.steps ?? otherwise else { continue }
                try await self.run(chosen, route: route, flow: &flow, deadline: deadline, instruments: instruments, request: request, logger: logger, topNumber: number)
            case .parallel(let parallel):
                try await self.parallel(
                    step, parallel, number: number, route: route, flow: &flow, deadline: deadline, instruments: instruments, request: request, logger: logger
                )
            }
        }
    }

    /// One service call: fired (async) or awaited, its output becoming (or merged into) the
    /// document; a final failure stops the route unless the step says `errOnFail: false`.
    private func call(
        _ step: RouteStep, number: Int, route: Route, flow: inout Flow, deadline: NIODeadline, instruments: RouteInstruments,
        request: RequestEnvelope, logger: RequestLogger
    ) async throws(SkyError) {
        var stepRequest = request
        stepRequest.payload = flow.document
        stepRequest.meta = flow.meta
        if step.isAsync {
            await self.fireAsync(step, number: number, route: route, instruments: instruments, request: stepRequest, logger: logger)
            return
        }
        if let rate = step.rate {
            do throws(SkyError) {
                try await self.limiters.admit(
                    "step.\(route.name).\(step.slot + 1)", what: "step \(number) (\(step.service)) of route '\(route.name)'", rate: rate, request: request, deadline: deadline
                )
            } catch {
                try self.settle(error, step: step, number: number, route: route, flow: &flow, logger: logger)
                return
            }
        }
        guard deadline > .now() else {
            throw SkyError(
                .deadlineExceeded,
                "route deadline passed before step \(number) (\(step.service)) could start",
                route: route.name,
                step: number,
                service: step.service
            )
        }
        do throws(SkyError) {
            let response = try await self.callWithRetries(
                step, instruments: instruments.steps[step.slot], request: stepRequest, routeDeadline: deadline, logger: logger
            )
            for (key, value) in response.meta { flow.meta[key] = value }
            flow.errors.append(contentsOf: response.errors)
            if step.merge {
                guard case .object(var fields) = flow.document, case .object(let output) = response.payload else {
                    throw SkyError(
                        .badResponse,
                        "merge needs objects, but the document is \(flow.document.typeName) and the output is \(response.payload.typeName)",
                        service: step.service
                    )
                }
                for (key, value) in output { fields[key] = value }
                flow.document = .object(fields)
            } else {
                flow.document = response.payload
            }
        } catch {
            try self.settle(error, step: step, number: number, route: route, flow: &flow, logger: logger)
        }
    }

    /// A step's final failure: recorded and gone past under `errOnFail: false`, else thrown as
    /// the route's failure, naming the step.
    private func settle(_ error: SkyError, step: RouteStep, number: Int, route: Route, flow: inout Flow, logger: RequestLogger) throws(SkyError) {
        var failure = error
        // Decided by value: this step's deadline failures are named here, once (the
        // route-level "before step N could start" error never reaches this catch).
        if failure.code == .deadlineExceeded {
            failure.message += " (step \(number), \(step.service))"
        }
        failure.route = route.name
        failure.step = number
        failure.service = step.service
        if Task.isCancelled {
            // A stop cut the call short: not a failure of the step (``runOnce`` says so).
            logger.debug("step interrupted by a stop", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(failure.message)"])
            throw failure
        }
        if !step.errOnFail {
            logger.warning("step failed; recorded and going on (errOnFail: false)", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(failure.message)"])
            flow.errors.append(StepError(service: step.service, message: failure.message, code: failure.code.description))
            return
        }
        logger.warning("step failed; route stopped", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(failure.message)"])
        // Timeouts, open circuits and rate limits keep their codes: 504, 503 and 429, not 502.
        // A service that refused the document itself (bad_request) makes it the caller's
        // error, 422, not the cluster's 502: retrying the same document cannot help.
        if failure.code == .badRequest {
            failure.code = .rejected
        } else if ![.deadlineExceeded, .circuitOpen, .rateLimited].contains(failure.code) {
            failure.code = .stepFailed
        }
        failure.isRetryable = false
        throw failure
    }

    /// A `parallel:` step: every branch at once on its own copy of the document, each under
    /// the route's deadline (and the step's `timeout`, when it has one), then the join. Every
    /// branch ends (its calls carry the deadline), so the join never hangs. A branch that
    /// fails for good fails the step, which then follows its own `errOnFail`.
    private func parallel(
        _ step: RouteStep, _ parallel: ParallelStep, number: Int, route: Route, flow: inout Flow, deadline: NIODeadline,
        instruments: RouteInstruments, request: RequestEnvelope, logger: RequestLogger
    ) async throws(SkyError) {
        let branchDeadline = step.timeout.map { min(deadline, .now() + TimeAmount($0)) } ?? deadline
        let start = flow
        let outcomes = await withTaskGroup(of: (Int, Result<Flow, SkyError>).self) { group in
            for (index, branch) in parallel.branches.enumerated() {
                group.addTask {
                    var copy = Flow(document: start.document, meta: start.meta)
                    do throws(SkyError) {
                        try await self.run(
                            branch.steps, route: route, flow: &copy, deadline: branchDeadline, instruments: instruments, request: request, logger: logger, topNumber: number
                        )
                        return (index, .success(copy))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var outcomes: [(Int, Result<Flow, SkyError>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var branches: [(name: String, flow: Flow)] = []
        for (branch, outcome) in zip(parallel.branches, outcomes) {
            switch outcome {
            case .success(let done):
                branches.append((branch.name, done))
            case .failure(var error):
                error.message = "branch '\(branch.name)': \(error.message)"
                try self.settle(error, step: step, number: number, route: route, flow: &flow, logger: logger)
                return
            }
        }
        guard case .object(var fields) = start.document else {
            try self.settle(
                SkyError(.badResponse, "a parallel join needs an object document, but it is \(start.document.typeName)"),
                step: step, number: number, route: route, flow: &flow, logger: logger
            )
            return
        }
        var changedBy: [String: String] = [:]
        for (name, done) in branches {
            flow.errors.append(contentsOf: done.errors)
            for (key, value) in done.meta where start.meta[key] != value { flow.meta[key] = value }
            switch parallel.join {
            case .collect:
                fields[name] = done.document
            case .merge:
                guard case .object(let output) = done.document else {
                    try self.settle(
                        SkyError(.badResponse, "branch '\(name)' ended with \(done.document.typeName); join: merge needs objects (or use join: collect)"),
                        step: step, number: number, route: route, flow: &flow, logger: logger
                    )
                    return
                }
                for (key, value) in output.sorted(by: { $0.key < $1.key }) where start.document[key] != value {
                    if let earlier = changedBy[key], fields[key] != value {
                        flow.errors.append(StepError(
                            service: "parallel",
                            message: "branches '\(earlier)' and '\(name)' both set '\(key)'; '\(name)' (later in the file) wins",
                            code: "merge_conflict"
                        ))
                    }
                    fields[key] = value
                    changedBy[key] = name
                }
            }
        }
        flow.document = .object(fields)
    }

    /// Calls a step, retrying retryable failures within its policy and the route's deadline.
    /// - Parameters:
    ///   - firstAttempt: the attempt to start with (an async step tried once inline goes on at 2).
    ///   - lastAttempt: stop after this attempt even if the policy allows more.
    private func callWithRetries(
        _ step: RouteStep,
        instruments: StepInstruments,
        request: RequestEnvelope,
        routeDeadline: NIODeadline,
        firstAttempt: Int = 1,
        lastAttempt: Int = .max,
        logger: RequestLogger
    ) async throws(SkyError) -> ServiceResponse {
        var tried: Set<String> = []
        var attempt = firstAttempt
        while true {
            let stepDeadline = step.timeout.map { min(routeDeadline, .now() + TimeAmount($0)) } ?? routeDeadline
            var call = request
            call.step = step.service
            call.attempt = attempt
            call.trace = request.trace.child()
            call.deadline = WallClock.epochMilliseconds() + max(0, (stepDeadline - .now()).nanoseconds / 1_000_000)
            let breaker = step.breaker.map { (policy: $0, breaker: self.breakers.breaker(for: step.service)) }
            if let breaker, let refusal = breaker.breaker.permit(policy: breaker.policy) {
                // Fail fast: nothing is sent, and no retry (it would be refused the same way).
                throw refusal
            }
            instruments.started()
            let started = ContinuousClock.now
            let startDate = call.trace.sampled ? Date() : nil
            do throws(ServiceDispatcher.Failure) {
                let (response, instance) = try await self.dispatcher.call(
                    step,
                    request: call,
                    deadline: stepDeadline,
                    excluding: tried
                )
                let elapsed = ContinuousClock.now - started
                if let breaker { breaker.breaker.record(nil, policy: breaker.policy) }
                instruments.finished(after: elapsed, succeeded: true)
                self.recordCallSpan(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: instance.id, address: instance.address, error: nil)
                if let serverDuration = response.serverDuration {
                    self.recordServiceSpan(step, call: call, start: startDate, duration: serverDuration, instance: instance)
                }
                return response
            } catch {
                let elapsed = ContinuousClock.now - started
                if let breaker { breaker.breaker.record(error.error, policy: breaker.policy) }
                instruments.finished(after: elapsed, succeeded: false)
                self.recordCallSpan(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: error.nodeID, address: error.address, error: error.error)
                var failure = error.error
                if let nodeID = error.nodeID { tried.insert(nodeID) }
                if failure.code == .connectionFailed && !Task.isCancelled {
                    // The balancer leaves the instance out for a while; say which and why (once
                    // per quarantine, since it is not chosen meanwhile).
                    logger.warning("instance left out", metadata: ["service": "\(step.service)", "error": "\(failure.message)"])
                }
                if failure.code == .deadlineExceeded {
                    let which = stepDeadline < routeDeadline ? "step timeout (\(step.timeout.map(DurationParser.format) ?? ""))" : "route deadline"
                    failure.message = "timed out: \(failure.message) within the \(which)"
                }
                guard failure.isRetryable, attempt < step.retry.attempts, attempt < lastAttempt, !Task.isCancelled else {
                    if attempt > 1 { failure.message += " (after \(attempt) attempts)" }
                    throw failure
                }
                let delay = step.retry.delay(afterAttempt: attempt)
                guard NIODeadline.now() + TimeAmount(delay) < routeDeadline else {
                    failure.message += " (no time left for attempt \(attempt + 1) before the route deadline)"
                    throw failure
                }
                logger.debug(
                    "retrying step",
                    metadata: ["service": "\(step.service)", "attempt": "\(attempt + 1)", "delay": "\(delay)", "error": "\(failure.message)"]
                )
                instruments.retrying()
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    // Cancelled (the caller went away, shutdown): no further attempt is sent.
                    failure.message += " (cancelled before attempt \(attempt + 1))"
                    throw failure
                }
                attempt += 1
            }
        }
    }

    /// Logs an out-of-band step's final failure (at debug level when a stop cut it short).
    private func asyncStepFailed(_ error: any Error, step: RouteStep, number: Int, logger: RequestLogger) {
        let metadata: Logger.Metadata = ["step": "\(number)", "service": "\(step.service)", "error": "\(error)"]
        if Task.isCancelled {
            logger.debug("async step interrupted by a stop", metadata: metadata)
        } else {
            logger.warning("async step failed", metadata: metadata)
        }
    }

    /// Fires an out-of-band step. When every instance of its service that this router would
    /// pick is in-process and completes promptly, the first attempt runs inline: it costs less
    /// than queuing a task, and the route's answer waits only for that computation. Otherwise,
    /// or for the retries of a failed inline attempt, the call goes to the bounded
    /// ``AsyncStepQueue`` and the route never waits.
    private func fireAsync(
        _ step: RouteStep,
        number: Int,
        route: Route,
        instruments: RouteInstruments,
        request: RequestEnvelope,
        logger: RequestLogger
    ) async {
        // Out-of-band steps get their own deadline: the route's own answer must not wait, and
        // the async call must not be cut short when the route returns.
        let timeout = step.timeout ?? route.timeout ?? self.defaultTimeout
        let stepInstruments = instruments.steps[step.slot]
        var firstAttempt = 1
        if self.dispatcher.runsPromptlyInProcess(step) {
            do throws(SkyError) {
                _ = try await self.callWithRetries(
                    step, instruments: stepInstruments, request: request, routeDeadline: .now() + TimeAmount(timeout), lastAttempt: 1, logger: logger
                )
                instruments.asyncProcessed.add()
                return
            } catch {
                guard error.isRetryable, step.retry.attempts > 1 else {
                    instruments.asyncErrors.add()
                    self.asyncStepFailed(error, step: step, number: number, logger: logger)
                    return
                }
                firstAttempt = 2
            }
        }
        let accepted = self.asyncSteps.submit { [self, firstAttempt] in
            let deadline = NIODeadline.now() + TimeAmount(timeout)
            do {
                _ = try await self.callWithRetries(
                    step, instruments: stepInstruments, request: request, routeDeadline: deadline, firstAttempt: firstAttempt, logger: logger
                )
                instruments.asyncProcessed.add()
            } catch {
                instruments.asyncErrors.add()
                self.asyncStepFailed(error, step: step, number: number, logger: logger)
            }
        }
        if !accepted {
            instruments.asyncDroppedOne()
            logger.debug("async step dropped: too many in flight", metadata: ["step": "\(number)", "service": "\(step.service)"])
        }
    }
}
