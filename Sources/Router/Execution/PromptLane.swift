import Foundation
import NIOCore
import RegistryKit
import SkyLib
import RouteModel

/// The fast lane for a route whose every step this process answers at once: calls of
/// in-process handlers that complete promptly (`sky run`'s built-ins, a service hosted in the
/// router's process), with none of the constructs that need a request of their own
/// (dedupe, rate limits, breakers, choice, parallel).
///
/// A batch of requests (a CSV batch's rows; an HTTP request, file or message is a batch of one) runs step by
/// step: each step's handler is called for every request still running, then the next step.
/// What ``RouteRun`` does per call is done here once per step of the batch: the instance
/// chosen, the deadline read and checked, the call's deadline stamped, the time measured and
/// the counters added. The answers, errors, retries and `errOnFail` decisions are the same as
/// ``RouteRun``'s: a first attempt that fails goes on through ``StepAttempts`` (back-off, the
/// next attempt elsewhere first), a final failure through ``RouteRun/settle(_:step:number:flow:)``.
///
/// What differs, and why it is fine:
/// - The requests of a batch run side by side, so each is counted at the batch's mean time
///   per request, in the route's and each step's latency.
/// - The batch has one deadline: the route's timeout from the batch's start, or the soonest
///   caller's deadline among its requests (a CSV batch's rows have none).
/// - Sampled requests never come here (their spans need each call timed): the executor runs
///   them through ``RouteRun``.
///
/// A route's lane is made once and kept in its ``RoutePlanSlot`` until the registry cache
/// changes (a heartbeat, a node gone, one come), so a request makes no instance lookups. A
/// local instance whose heartbeats stopped landing is still called until the reaper removes
/// its record: the handler is in this process and answers all the same.
final class PromptLane: Sendable {
    /// One step of the route with the handler that answers it.
    struct Stage: Sendable {
        let step: RouteStep
        /// The step's number in the route (1-based), for errors.
        let number: Int
        let handler: any ServiceHandler
        /// The instance the handler is, named as a failed attempt's (its retry goes elsewhere).
        let nodeID: String
    }

    let stages: [Stage]

    /// The lane for `route`, or `nil` when some step cannot take it: a construct that needs a
    /// request of its own, a service with an instance outside this process (or one that waits),
    /// or a route test's virtual clock (its faults are scripted per call).
    init?(route: Route, executor: RouteExecutor) {
        guard route.dedupe == nil, route.rate == nil, !executor.clock.isVirtual else { return nil }
        var stages: [Stage] = []
        stages.reserveCapacity(route.steps.count)
        for (index, step) in route.steps.enumerated() {
            guard case .call = step.action, step.rate == nil, step.breaker == nil,
                let (handler, nodeID) = executor.dispatcher.promptHandler(for: step)
            else { return nil }
            stages.append(Stage(step: step, number: index + 1, handler: handler, nodeID: nodeID))
        }
        self.stages = stages
    }

    /// Runs `requests` (none of them sampled) through the route, answering in their order.
    func run(_ requests: [RequestEnvelope], route: Route, executor: RouteExecutor) async -> [Result<RouteResult, SkyError>] {
        let instruments = executor.instruments(for: route)
        let count = requests.count
        instruments.started(source: requests.first?.meta["source"], count: count)
        let started = ContinuousClock.now
        var deadline = executor.clock.now() + TimeAmount(route.timeout ?? executor.defaultTimeout)
        for request in requests {
            if let remaining = request.remainingMilliseconds { deadline = min(deadline, executor.clock.now() + .milliseconds(remaining)) }
        }
        var flows = requests.map { RouteRun.Flow(document: $0.payload, meta: $0.meta) }
        // A request's failure, once it has one: it takes no further step.
        var failures = [SkyError?](repeating: nil, count: count)
        for stage in self.stages {
            let step = stage.step
            let now = executor.clock.now()
            // An out-of-band step is fired whatever is left of the route's deadline (it has its
            // own), as ``RouteRun`` fires it.
            guard deadline > now || step.isAsync else {
                for index in 0..<count where failures[index] == nil {
                    failures[index] = SkyError(
                        .deadlineExceeded, "route deadline passed before step \(stage.number) (\(step.service)) could start",
                        route: route.name, step: stage.number, service: step.service
                    )
                }
                break
            }
            let stepDeadline =
                step.isAsync
                ? now + TimeAmount(step.timeout ?? route.timeout ?? executor.defaultTimeout)
                : step.timeout.map { min(deadline, now + TimeAmount($0)) } ?? deadline
            let callDeadline = WallClock.epochMilliseconds() + max(0, (stepDeadline - now).nanoseconds / 1_000_000)
            let stepStarted = ContinuousClock.now
            var (calls, failed) = (0, 0)
            for index in 0..<count where failures[index] == nil {
                if let when = step.when, !when.holds(for: flows[index].document) { continue }
                var call = requests[index]
                call.payload = flows[index].document
                call.meta = flows[index].meta
                let routeRequest = call
                call.step = step.service
                call.attempt = 1
                call.trace = call.trace.child()
                call.deadline = callDeadline
                calls += 1
                let response: ServiceResponse
                do {
                    response = try await stage.handler.handle(call)
                } catch {
                    failed += 1
                    let failure = ServiceDispatcher.localFailure(error, service: step.service)
                    let run = RouteRun(executor: executor, route: route, request: requests[index], instruments: instruments)
                    if step.isAsync {
                        self.asyncFailed(failure, stage: stage, request: routeRequest, run: run)
                        continue
                    }
                    do throws(SkyError) {
                        let retried = try await executor.attempts.retry(
                            after: failure, attempt: 1, of: step, instruments: instruments.steps[step.slot], request: routeRequest, routeDeadline: deadline,
                            tried: [stage.nodeID], logger: run.logger
                        )
                        try flows[index].absorb(retried, of: step)
                    } catch {
                        do throws(SkyError) {
                            try run.settle(error, step: step, number: stage.number, flow: &flows[index])
                        } catch {
                            failures[index] = error
                        }
                    }
                    continue
                }
                if step.isAsync {
                    instruments.asyncProcessed.add()
                    continue
                }
                do throws(SkyError) {
                    try flows[index].absorb(response, of: step)
                } catch {
                    // An answer that cannot be merged is the step's failure, as in RouteRun.
                    let run = RouteRun(executor: executor, route: route, request: requests[index], instruments: instruments)
                    do throws(SkyError) {
                        try run.settle(error, step: step, number: stage.number, flow: &flows[index])
                    } catch {
                        failures[index] = error
                    }
                }
            }
            if calls > 0 {
                instruments.steps[step.slot].finished(calls: calls, failed: failed, each: (ContinuousClock.now - stepStarted) / calls)
            }
        }
        return self.finish(requests, flows: flows, failures: failures, route: route, executor: executor, instruments: instruments, since: started)
    }

    /// An out-of-band step's inline first attempt failed: retried from the queue when its
    /// policy allows, else counted and logged; the route goes on either way.
    private func asyncFailed(_ failure: SkyError, stage: Stage, request: RequestEnvelope, run: RouteRun) {
        guard failure.isRetryable, stage.step.retry.attempts > 1, !Task.isCancelled else {
            run.instruments.asyncErrors.add()
            run.asyncStepFailed(failure, step: stage.step, number: stage.number, logger: run.logger)
            return
        }
        run.queueAsync(stage.step, number: stage.number, request: request, firstAttempt: 2)
    }

    /// Counts the batch's outcomes once and answers each request's result; failures are kept
    /// for the dashboard as ``RouteExecutor`` keeps a single request's.
    private func finish(
        _ requests: [RequestEnvelope], flows: [RouteRun.Flow], failures: [SkyError?], route: Route, executor: RouteExecutor, instruments: RouteInstruments,
        since started: ContinuousClock.Instant
    ) -> [Result<RouteResult, SkyError>] {
        let each = (ContinuousClock.now - started) / max(1, requests.count)
        var results: [Result<RouteResult, SkyError>] = []
        results.reserveCapacity(requests.count)
        var (succeeded, failed, interrupted) = (0, 0, 0)
        for (index, flow) in flows.enumerated() {
            guard let error = failures[index] else {
                succeeded += 1
                results.append(.success(RouteResult(payload: flow.document, meta: flow.meta, errors: flow.errors)))
                continue
            }
            if Task.isCancelled {
                // Cut short by a stop past the drain limit: not the route's failure.
                interrupted += 1
                results.append(.failure(SkyError(.cancelled, "interrupted before the route finished (the process is stopping): \(error.message)", route: route.name)))
                continue
            }
            failed += 1
            executor.recordFailure(error, route: route, request: requests[index])
            results.append(.failure(error))
        }
        instruments.finished(succeeded: succeeded, failed: failed, each: each)
        for _ in 0..<interrupted { instruments.interrupted() }
        return results
    }
}
