import Foundation
import Logging
import NIOCore
import RegistryKit
import SkyLib
import RouteModel

/// One request's run through its route: what every step of it shares (the route, the request,
/// the route's deadline, its instruments and logger), made once per request rather than passed
/// as eight arguments through every call. The steps are walked here: serial calls, choices and
/// parallel branches, each failure settled by its step's `errOnFail`.
///
/// There is no race around the whole route: every call that can wait carries the deadline
/// itself (remote calls in the HTTP client, in-process handlers that do not complete promptly
/// in a race of their own, retry back-off checked against it), so a request costs no extra
/// tasks or timers for its deadline (BENCHMARKS.md).
struct RouteRun: Sendable {
    /// What the steps work on: the document, the envelope's meta, and the errors recorded by
    /// steps that may fail (`errOnFail: false`).
    struct Flow: Sendable {
        var document: JSONValue
        var meta: [String: String]
        var errors: [StepError] = []

        /// Takes in a serial step's answer: its meta and errors, and its output as the
        /// document, or shallow-merged into it with `merge: true`.
        mutating func absorb(_ response: ServiceResponse, of step: RouteStep) throws(SkyError) {
            for (key, value) in response.meta { self.meta[key] = value }
            self.errors.append(contentsOf: response.errors)
            guard step.merge else {
                self.document = response.payload
                return
            }
            guard case .object(var fields) = self.document, case .object(let output) = response.payload else {
                throw SkyError(
                    .badResponse,
                    "merge needs objects, but the document is \(self.document.typeName) and the output is \(response.payload.typeName)",
                    service: step.service
                )
            }
            // Emptied first, so the merge writes into the only copy of the fields.
            self.document = .null
            for (key, value) in output { fields[key] = value }
            self.document = .object(fields)
        }
    }

    /// The router's parts the steps call through (dispatch, limits, the out-of-band queue).
    let executor: RouteExecutor
    let route: Route
    let request: RequestEnvelope
    /// The route's deadline: its timeout, or the caller's deadline when that is sooner.
    let deadline: NIODeadline
    let instruments: RouteInstruments
    let logger: RequestLogger

    init(executor: RouteExecutor, route: Route, request: RequestEnvelope, instruments: RouteInstruments) {
        self.executor = executor
        self.route = route
        self.request = request
        var deadline = executor.clock.now() + TimeAmount(route.timeout ?? executor.defaultTimeout)
        if let remaining = request.remainingMilliseconds {
            deadline = min(deadline, executor.clock.now() + .milliseconds(remaining))
        }
        self.deadline = deadline
        self.instruments = instruments
        self.logger = RequestLogger(base: executor.logger, requestID: request.identifier, route: route.name)
    }

    /// Runs the route's steps on the request's document.
    func execute() async throws(SkyError) -> RouteResult {
        var flow = Flow(document: self.request.payload, meta: self.request.meta)
        try await self.run(self.route.steps, flow: &flow, deadline: self.deadline)
        return RouteResult(payload: flow.document, meta: flow.meta, errors: flow.errors)
    }

    /// Runs `steps` in order on `flow`, under `deadline` (the route's, or a parallel step's
    /// own). Nested steps (a choice's branch, a parallel branch) report under the number of the
    /// top-level step that holds them (`topNumber`).
    func run(_ steps: [RouteStep], flow: inout Flow, deadline: NIODeadline, topNumber: Int? = nil) async throws(SkyError) {
        // A parallel step's branches run under its own timeout: a run of their own.
        let run = deadline == self.deadline ? self : self.under(deadline)
        for (index, step) in steps.enumerated() {
            let number = topNumber ?? index + 1
            if let when = step.when, !when.holds(for: flow.document) { continue }
            switch step.action {
            case .call:
                try await run.call(step, number: number, flow: &flow)
            case .choice(let branches, let otherwise):
                guard let chosen = branches.first(where: { $0.when.holds(for: flow.document) })?.steps ?? otherwise else { continue }
                try await run.run(chosen, flow: &flow, deadline: run.deadline, topNumber: number)
            case .parallel(let parallel):
                try await run.parallel(step, parallel, number: number, flow: &flow)
            }
        }
    }

    /// The same run under another deadline.
    private func under(_ deadline: NIODeadline) -> RouteRun {
        RouteRun(executor: self.executor, route: self.route, request: self.request, deadline: deadline, instruments: self.instruments, logger: self.logger)
    }

    private init(executor: RouteExecutor, route: Route, request: RequestEnvelope, deadline: NIODeadline, instruments: RouteInstruments, logger: RequestLogger) {
        self.executor = executor
        self.route = route
        self.request = request
        self.deadline = deadline
        self.instruments = instruments
        self.logger = logger
    }

    /// One service call: fired (async) or awaited, its output becoming (or merged into) the
    /// document; a final failure stops the route unless the step says `errOnFail: false`.
    func call(_ step: RouteStep, number: Int, flow: inout Flow) async throws(SkyError) {
        let route = self.route
        var stepRequest = self.request
        stepRequest.payload = flow.document
        stepRequest.meta = flow.meta
        if step.isAsync {
            await self.fireAsync(step, number: number, request: stepRequest)
            return
        }
        if let rate = step.rate {
            do throws(SkyError) {
                try await self.executor.limiters.admit(
                    "step.\(route.name).\(step.slot + 1)", what: "step \(number) (\(step.service)) of route '\(route.name)'", rate: rate, request: self.request,
                    deadline: self.deadline
                )
            } catch {
                try self.settle(error, step: step, number: number, flow: &flow)
                return
            }
        }
        guard self.deadline > self.executor.clock.now() else {
            throw SkyError(
                .deadlineExceeded,
                "route deadline passed before step \(number) (\(step.service)) could start",
                route: route.name,
                step: number,
                service: step.service
            )
        }
        do throws(SkyError) {
            let response = try await self.executor.attempts.call(
                step, instruments: self.instruments.steps[step.slot], request: stepRequest, routeDeadline: self.deadline, logger: self.logger
            )
            try flow.absorb(response, of: step)
        } catch {
            try self.settle(error, step: step, number: number, flow: &flow)
        }
    }

    /// A step's final failure: recorded and gone past under `errOnFail: false`, else thrown as
    /// the route's failure, naming the step.
    func settle(_ error: SkyError, step: RouteStep, number: Int, flow: inout Flow) throws(SkyError) {
        let logger = self.logger
        var failure = error
        // Decided by value: this step's deadline failures are named here, once (the
        // route-level "before step N could start" error never reaches this catch).
        if failure.code == .deadlineExceeded {
            failure.message += " (step \(number), \(step.service))"
        }
        failure.route = self.route.name
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
    /// the route's deadline (and the step's `timeout`, when it has one), then the join
    /// (``ParallelJoin``). Every branch ends (its calls carry the deadline), so the join never
    /// hangs. A branch that fails for good fails the step, which then follows its own `errOnFail`.
    func parallel(_ step: RouteStep, _ parallel: ParallelStep, number: Int, flow: inout Flow) async throws(SkyError) {
        let branchDeadline = step.timeout.map { min(self.deadline, self.executor.clock.now() + TimeAmount($0)) } ?? self.deadline
        let start = flow
        let outcomes = await withTaskGroup(of: (Int, Result<Flow, SkyError>).self) { group in
            for (index, branch) in parallel.branches.enumerated() {
                group.addTask {
                    var copy = Flow(document: start.document, meta: start.meta)
                    do throws(SkyError) {
                        try await self.run(branch.steps, flow: &copy, deadline: branchDeadline, topNumber: number)
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
                try self.settle(error, step: step, number: number, flow: &flow)
                return
            }
        }
        switch ParallelJoin.join(parallel.join, start: start, branches: branches) {
        case .success(let joined): flow = joined
        case .failure(let error): try self.settle(error, step: step, number: number, flow: &flow)
        }
    }

    /// Logs an out-of-band step's final failure (at debug level when a stop cut it short).
    func asyncStepFailed(_ error: any Error, step: RouteStep, number: Int, logger: RequestLogger) {
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
    func fireAsync(_ step: RouteStep, number: Int, request: RequestEnvelope) async {
        let route = self.route
        let instruments = self.instruments
        let logger = self.logger
        let executor = self.executor
        // Out-of-band steps get their own deadline: the route's own answer must not wait, and
        // the async call must not be cut short when the route returns.
        let timeout = step.timeout ?? route.timeout ?? executor.defaultTimeout
        let stepInstruments = instruments.steps[step.slot]
        if executor.clock.isVirtual {
            // A route test: every attempt now, in order, on a clock of its own, so the outcome is
            // the same each run and the route's time is not the out-of-band step's.
            let attempts = executor.attempts.on(.virtual(startingAt: executor.clock.now()))
            do throws(SkyError) {
                _ = try await attempts.call(step, instruments: stepInstruments, request: request, routeDeadline: executor.clock.now() + TimeAmount(timeout), logger: logger)
                instruments.asyncProcessed.add()
            } catch {
                instruments.asyncErrors.add()
                self.asyncStepFailed(error, step: step, number: number, logger: logger)
            }
            return
        }
        var firstAttempt = 1
        if executor.dispatcher.runsPromptlyInProcess(step) {
            do throws(SkyError) {
                _ = try await executor.attempts.call(
                    step, instruments: stepInstruments, request: request, routeDeadline: executor.clock.now() + TimeAmount(timeout), lastAttempt: 1, logger: logger
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
        self.queueAsync(step, number: number, request: request, firstAttempt: firstAttempt)
    }

    /// Hands an out-of-band step's attempts from `firstAttempt` on to the bounded
    /// ``AsyncStepQueue`` (the route never waits for them), or counts it dropped when the queue
    /// is full.
    func queueAsync(_ step: RouteStep, number: Int, request: RequestEnvelope, firstAttempt: Int) {
        let (instruments, logger, executor) = (self.instruments, self.logger, self.executor)
        let timeout = step.timeout ?? self.route.timeout ?? executor.defaultTimeout
        let stepInstruments = instruments.steps[step.slot]
        let accepted = executor.asyncSteps.submit { [self, firstAttempt] in
            let deadline = executor.clock.now() + TimeAmount(timeout)
            do {
                _ = try await executor.attempts.call(
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
