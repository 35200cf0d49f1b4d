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
    private let dispatcher: ServiceDispatcher
    private let asyncSteps: AsyncStepQueue
    private let instruments: RouteInstrumentsCache
    private let failures = RecentFailures()
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
        dispatcher: ServiceDispatcher,
        asyncSteps: AsyncStepQueue,
        counters: Counters,
        defaultTimeout: Duration = .seconds(30),
        spans: SpanRecorder? = nil,
        sampler: TraceSampler = TraceSampler(perSecond: 100),
        logger: Logger
    ) {
        self.spans = spans
        self.sampler = sampler
        self.table = table
        self.dispatcher = dispatcher
        self.asyncSteps = asyncSteps
        self.instruments = RouteInstrumentsCache(counters: counters)
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

    public func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        guard let route = self.table.route(named: request.route) else {
            throw SkyError(.routeNotFound, "no route named '\(request.route)'", route: request.route)
        }
        let instruments = self.instruments.instruments(for: route)
        instruments.started()
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
        var document = request.payload
        var meta = request.meta
        var errors: [StepError] = []
        let logger = RequestLogger(base: self.logger, requestID: request.id, route: route.name)

        for (index, step) in route.steps.enumerated() {
            let number = index + 1
            var stepRequest = request
            stepRequest.payload = document
            stepRequest.meta = meta
            if step.isAsync {
                await self.fireAsync(step, number: number, route: route, instruments: instruments, request: stepRequest, logger: logger)
                continue
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
                    step, instruments: instruments.steps[index], request: stepRequest, routeDeadline: deadline, logger: logger
                )
                for (key, value) in response.meta { meta[key] = value }
                errors.append(contentsOf: response.errors)
                if step.merge {
                    guard case .object(var fields) = document, case .object(let output) = response.payload else {
                        throw SkyError(
                            .badResponse,
                            "merge needs objects, but the document is \(document.typeName) and the output is \(response.payload.typeName)",
                            service: step.service
                        )
                    }
                    for (key, value) in output { fields[key] = value }
                    document = .object(fields)
                } else {
                    document = response.payload
                }
            } catch {
                var failure = error
                // Decided by value: this step's deadline failures are named here, once (the
                // route-level "before step N could start" error never reaches this catch).
                if failure.code == .deadlineExceeded {
                    failure.message += " (step \(number), \(step.service))"
                }
                failure.route = route.name
                failure.step = number
                failure.service = step.service
                if !step.errOnFail {
                    logger.warning("step failed; recorded and going on (errOnFail: false)", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(failure.message)"])
                    errors.append(StepError(service: step.service, message: failure.message, code: failure.code.description))
                    continue
                }
                logger.warning("step failed; route stopped", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(failure.message)"])
                if failure.code != .deadlineExceeded { failure.code = .stepFailed }
                failure.isRetryable = false
                throw failure
            }
        }
        return RouteResult(payload: document, meta: meta, errors: errors)
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
                instruments.finished(after: elapsed, succeeded: true)
                self.recordCallSpan(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: instance.id, address: instance.address, error: nil)
                if let serverDuration = response.serverDuration {
                    self.recordServiceSpan(step, call: call, start: startDate, duration: serverDuration, instance: instance)
                }
                return response
            } catch {
                let elapsed = ContinuousClock.now - started
                instruments.finished(after: elapsed, succeeded: false)
                self.recordCallSpan(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: error.nodeID, address: error.address, error: error.error)
                var failure = error.error
                if let nodeID = error.nodeID { tried.insert(nodeID) }
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
        let stepInstruments = instruments.steps[number - 1]
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
                    logger.warning("async step failed", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(error)"])
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
                logger.warning("async step failed", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(error)"])
            }
        }
        if !accepted {
            instruments.asyncDroppedOne()
            logger.debug("async step dropped: too many in flight", metadata: ["step": "\(number)", "service": "\(step.service)"])
        }
    }
}
