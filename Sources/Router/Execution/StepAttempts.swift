import Foundation
import Logging
import NIOCore
import RegistryKit
import SkyLib
import RouteModel

/// One step's attempts: each call under the step's timeout and the route's deadline, through
/// the step's circuit breaker, retried (another instance first) while the failure is retryable,
/// the policy allows and the deadline leaves room for the back-off. What a retry costs, and
/// when it stops, is decided here and nowhere else.
struct StepAttempts: Sendable {
    let dispatcher: any StepDispatching
    let breakers: CircuitBreakers
    let spans: RouteSpans
    /// Where deadlines are read and back-offs waited (a route test's is virtual).
    let clock: RouteClock

    /// The same attempts on another clock (a route test's out-of-band step, whose waits must not
    /// move the route's time).
    func on(_ clock: RouteClock) -> StepAttempts {
        StepAttempts(dispatcher: self.dispatcher, breakers: self.breakers, spans: self.spans, clock: clock)
    }

    /// Calls a step, retrying retryable failures within its policy and the route's deadline.
    /// - Parameters:
    ///   - firstAttempt: the attempt to start with (an async step tried once inline goes on at 2).
    ///   - lastAttempt: stop after this attempt even if the policy allows more.
    ///   - tried: instances that failed earlier attempts (the next goes elsewhere first).
    func call(
        _ step: RouteStep,
        instruments: StepInstruments,
        request: RequestEnvelope,
        routeDeadline: NIODeadline,
        firstAttempt: Int = 1,
        lastAttempt: Int = .max,
        tried: Set<String> = [],
        logger: RequestLogger
    ) async throws(SkyError) -> ServiceResponse {
        var tried = tried
        var attempt = firstAttempt
        while true {
            let stepDeadline = step.timeout.map { min(routeDeadline, self.clock.now() + TimeAmount($0)) } ?? routeDeadline
            let breaker = step.breaker.map { (policy: $0, breaker: self.breakers.breaker(for: step.service)) }
            if let breaker, let refusal = breaker.breaker.permit(policy: breaker.policy) {
                // Fail fast: nothing is sent, and no retry (it would be refused the same way).
                throw refusal
            }
            do throws(SkyError) {
                return try await self.attempt(
                    attempt, of: step, request: request, deadlines: (step: stepDeadline, route: routeDeadline), breaker: breaker,
                    tried: &tried, instruments: instruments, logger: logger
                )
            } catch {
                try await self.pause(after: error, attempt: attempt, of: step, lastAttempt: lastAttempt, routeDeadline: routeDeadline, instruments: instruments, logger: logger)
            }
            attempt += 1
        }
    }

    /// Goes on after `attempt` failed elsewhere (``PromptLane`` makes first attempts itself):
    /// the same back-off and retries as ``call(_:instruments:request:routeDeadline:firstAttempt:lastAttempt:tried:logger:)``
    /// would have made, or `failure` when the policy or the deadline allows no more.
    func retry(
        after failure: SkyError, attempt: Int, of step: RouteStep, instruments: StepInstruments, request: RequestEnvelope, routeDeadline: NIODeadline,
        tried: Set<String>, logger: RequestLogger
    ) async throws(SkyError) -> ServiceResponse {
        try await self.pause(after: failure, attempt: attempt, of: step, lastAttempt: .max, routeDeadline: routeDeadline, instruments: instruments, logger: logger)
        return try await self.call(
            step, instruments: instruments, request: request, routeDeadline: routeDeadline, firstAttempt: attempt + 1, tried: tried, logger: logger
        )
    }

    /// Between attempts: throws `failure` (saying why no attempt follows) unless it is
    /// retryable, the policy allows another attempt and the back-off ends before the route's
    /// deadline; otherwise waits the back-off.
    private func pause(
        after failure: SkyError, attempt: Int, of step: RouteStep, lastAttempt: Int, routeDeadline: NIODeadline, instruments: StepInstruments,
        logger: RequestLogger
    ) async throws(SkyError) {
        var failure = failure
        guard failure.isRetryable, attempt < step.retry.attempts, attempt < lastAttempt, !Task.isCancelled else {
            if attempt > 1 { failure.message += " (after \(attempt) attempts)" }
            throw failure
        }
        let delay = step.retry.delay(afterAttempt: attempt, jitter: self.clock.jitter())
        guard self.clock.now() + TimeAmount(delay) < routeDeadline else {
            failure.message += " (no time left for attempt \(attempt + 1) before the route deadline)"
            throw failure
        }
        logger.debug(
            "retrying step",
            metadata: ["service": "\(step.service)", "attempt": "\(attempt + 1)", "delay": "\(delay)", "error": "\(failure.message)"]
        )
        instruments.retrying()
        do {
            try await self.clock.sleep(for: delay)
        } catch {
            // Cancelled (the caller went away, shutdown): no further attempt is sent.
            failure.message += " (cancelled before attempt \(attempt + 1))"
            throw failure
        }
    }

    /// One attempt: the call to an instance not yet `tried`, measured, recorded in the breaker
    /// and the spans. A failure names the instance in `tried` (the next attempt goes elsewhere)
    /// and says which deadline ran out.
    private func attempt(
        _ attempt: Int,
        of step: RouteStep,
        request: RequestEnvelope,
        deadlines: (step: NIODeadline, route: NIODeadline),
        breaker: (policy: BreakerPolicy, breaker: CircuitBreaker)?,
        tried: inout Set<String>,
        instruments: StepInstruments,
        logger: RequestLogger
    ) async throws(SkyError) -> ServiceResponse {
        var call = request
        call.step = step.service
        call.attempt = attempt
        call.trace = request.trace.child()
        call.deadline = WallClock.epochMilliseconds() + max(0, (deadlines.step - self.clock.now()).nanoseconds / 1_000_000)
        instruments.started()
        let started = ContinuousClock.now
        let startDate = call.trace.sampled ? Date() : nil
        do throws(ServiceDispatcher.Failure) {
            let (response, instance) = try await self.dispatcher.call(step, request: call, deadline: deadlines.step, excluding: tried)
            let elapsed = ContinuousClock.now - started
            if let breaker { breaker.breaker.record(nil, policy: breaker.policy) }
            instruments.finished(after: elapsed, succeeded: true)
            self.spans.recordCall(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: instance.id, address: instance.address, error: nil)
            if let serverDuration = response.serverDuration {
                self.spans.recordService(step, call: call, start: startDate, duration: serverDuration, instance: instance)
            }
            return response
        } catch {
            let elapsed = ContinuousClock.now - started
            if let breaker { breaker.breaker.record(error.error, policy: breaker.policy) }
            instruments.finished(after: elapsed, succeeded: false)
            self.spans.recordCall(step, call: call, parent: request.trace, start: startDate, elapsed: elapsed, instance: error.nodeID, address: error.address, error: error.error)
            var failure = error.error
            if let nodeID = error.nodeID { tried.insert(nodeID) }
            if failure.code == .connectionFailed && !Task.isCancelled {
                // The balancer leaves the instance out for a while; say which and why (once
                // per quarantine, since it is not chosen meanwhile).
                logger.warning("instance left out", metadata: ["service": "\(step.service)", "error": "\(failure.message)"])
            }
            if failure.code == .deadlineExceeded {
                let which = deadlines.step < deadlines.route ? "step timeout (\(step.timeout.map(DurationParser.format) ?? ""))" : "route deadline"
                failure.message = "timed out: \(failure.message) within the \(which)"
            }
            throw failure
        }
    }
}
