public import Logging
import NIOCore
public import SkyLib

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
    private let counters: Counters
    private let logger: Logger
    /// Deadline of routes that set no `timeout`.
    public let defaultTimeout: Duration

    public init(
        table: RouteTable,
        dispatcher: ServiceDispatcher,
        asyncSteps: AsyncStepQueue,
        counters: Counters,
        defaultTimeout: Duration = .seconds(30),
        logger: Logger
    ) {
        self.table = table
        self.dispatcher = dispatcher
        self.asyncSteps = asyncSteps
        self.counters = counters
        self.defaultTimeout = defaultTimeout
        self.logger = logger
    }

    public func routeSummaries() -> [RouteSummary] { self.table.summaries }

    public func route(named name: String) -> Route? { self.table.route(named: name) }

    public func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        guard let route = self.table.route(named: request.route) else {
            throw SkyError(.routeNotFound, "no route named '\(request.route)'", route: request.route)
        }
        let name = route.name
        self.counters.add("route.\(name)-inflight")
        defer { self.counters.add("route.\(name)-inflight", -1) }
        do {
            let result = try await self.execute(route, request: request)
            self.counters.add("route.\(name)-processed")
            return result
        } catch {
            self.counters.add("route.\(name)-errors")
            throw error
        }
    }

    private func execute(_ route: Route, request: RequestEnvelope) async throws(SkyError) -> RouteResult {
        // The route's deadline: its timeout, or the caller's deadline when that is sooner.
        var deadline = NIODeadline.now() + TimeAmount(route.timeout ?? self.defaultTimeout)
        if let remaining = request.remainingMilliseconds {
            deadline = min(deadline, .now() + .milliseconds(remaining))
        }
        var document = request.payload
        var meta = request.meta
        var errors: [StepError] = []
        var logger = self.logger
        logger[metadataKey: "request"] = "\(request.id)"
        logger[metadataKey: "route"] = "\(route.name)"

        for (index, step) in route.steps.enumerated() {
            let number = index + 1
            var stepRequest = request
            stepRequest.payload = document
            stepRequest.meta = meta
            if step.isAsync {
                self.fireAsync(step, number: number, route: route, request: stepRequest, logger: logger)
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
                let response = try await self.callWithRetries(step, request: stepRequest, routeDeadline: deadline, logger: logger)
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
                failure.route = route.name
                failure.step = number
                failure.service = step.service
                if !step.errOnFail {
                    logger.warning("step failed; recorded and going on (errOnFail: false)", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(error.message)"])
                    errors.append(StepError(service: step.service, message: error.message, code: error.code.description))
                    continue
                }
                logger.warning("step failed; route stopped", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(error.message)"])
                if failure.code != .deadlineExceeded { failure.code = .stepFailed }
                failure.isRetryable = false
                throw failure
            }
        }
        return RouteResult(payload: document, meta: meta, errors: errors)
    }

    /// Calls a step, retrying retryable failures within its policy and the route's deadline.
    private func callWithRetries(
        _ step: RouteStep,
        request: RequestEnvelope,
        routeDeadline: NIODeadline,
        logger: Logger
    ) async throws(SkyError) -> ServiceResponse {
        var tried: Set<String> = []
        var attempt = 1
        while true {
            let stepDeadline = step.timeout.map { min(routeDeadline, .now() + TimeAmount($0)) } ?? routeDeadline
            var call = request
            call.step = step.service
            call.attempt = attempt
            call.trace = request.trace.child()
            call.deadline = Clock.epochMilliseconds() + max(0, (stepDeadline - .now()).nanoseconds / 1_000_000)
            self.counters.add("step.\(step.service)-calls")
            do throws(ServiceDispatcher.Failure) {
                return try await self.dispatcher.call(step, request: call, deadline: stepDeadline, excluding: tried).response
            } catch {
                self.counters.add("step.\(step.service)-errors")
                var failure = error.error
                if let nodeID = error.nodeID { tried.insert(nodeID) }
                if failure.code == .deadlineExceeded {
                    let which = stepDeadline < routeDeadline ? "step timeout (\(step.timeout.map(DurationParser.format) ?? ""))" : "route deadline"
                    failure.message = "timed out: \(failure.message) within the \(which)"
                }
                guard failure.isRetryable, attempt < step.retry.attempts else {
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
                self.counters.add("step.\(step.service)-retries")
                try? await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    private func fireAsync(_ step: RouteStep, number: Int, route: Route, request: RequestEnvelope, logger: Logger) {
        // Out-of-band steps get their own deadline: the route's own answer must not wait, and
        // the async call must not be cut short when the route returns.
        let timeout = step.timeout ?? route.timeout ?? self.defaultTimeout
        let accepted = self.asyncSteps.submit { [self] in
            let deadline = NIODeadline.now() + TimeAmount(timeout)
            do {
                _ = try await self.callWithRetries(step, request: request, routeDeadline: deadline, logger: logger)
                self.counters.add("route.\(route.name)-async-processed")
            } catch {
                self.counters.add("route.\(route.name)-async-errors")
                logger.warning("async step failed", metadata: ["step": "\(number)", "service": "\(step.service)", "error": "\(error)"])
            }
        }
        if !accepted {
            self.counters.add("route.\(route.name)-async-dropped")
            logger.debug("async step dropped: too many in flight", metadata: ["step": "\(number)", "service": "\(step.service)"])
        }
    }
}
