public import NIOCore
public import RegistryKit
public import SkyLib
public import RouteModel
import Synchronization

/// Answers calls from a script instead of services: for each service, its faults first, one
/// per call (``RouteTestFile/Fault``), then its answers, one per call, in order (the first call
/// gets the first answer, a retry the next). For route tests: no registry, no network, and
/// time on the test's ``RouteClock`` (virtual), so a delay or a hang costs no real time.
public final class ScriptedDispatcher: StepDispatching {
    private struct Script {
        var calls = 0
        /// Faults still to apply, one per call (`times` expanded).
        var faults: [RouteTestFile.Fault]
        /// Answers used so far.
        var answered = 0
    }

    private let answers: [String: [RouteTestFile.Answer]]
    private let scripts: Mutex<[String: Script]>
    private let clock: RouteClock

    /// Creates a `ScriptedDispatcher` answering from `answers` after `faults`, by service, with
    /// time on `clock`.
    public init(answers: [String: [RouteTestFile.Answer]], faults: [String: [RouteTestFile.Fault]] = [:], clock: RouteClock = .system) {
        self.answers = answers
        self.clock = clock
        var scripts: [String: Script] = [:]
        for (service, list) in faults {
            scripts[service] = Script(faults: list.flatMap { fault -> [RouteTestFile.Fault] in
                if case .fail(_, _, let times) = fault { return Array(repeating: fault, count: times) }
                return [fault]
            })
        }
        self.scripts = Mutex(scripts)
    }

    /// How many calls each service got.
    public var callCounts: [String: Int] { self.scripts.withLock { $0.filter { $0.value.calls > 0 }.mapValues(\.calls) } }

    public func call(
        _ step: RouteStep, request: RequestEnvelope, deadline: NIODeadline?, excluding: Set<String>
    ) async throws(ServiceDispatcher.Failure) -> (response: ServiceResponse, instance: NodeRecord) {
        let service = step.service
        let (number, fault) = self.scripts.withLock { scripts -> (Int, RouteTestFile.Fault?) in
            var script = scripts[service] ?? Script(faults: [])
            script.calls += 1
            let fault = script.faults.isEmpty ? nil : script.faults.removeFirst()
            scripts[service] = script
            return (script.calls, fault)
        }
        // A fresh instance id per call, so a retry "goes elsewhere" as in a router.
        let instance = NodeRecord(id: "\(service)-\(number)", kind: .service, service: service, address: "script:\(service)", status: .ready)
        func failure(_ code: SkyError.Code, _ message: String, retryable: Bool) -> ServiceDispatcher.Failure {
            ServiceDispatcher.Failure(error: SkyError(code, message, retryable: retryable, service: service), nodeID: instance.id)
        }
        // An out-of-band step's waits are its own: the route does not wait for it, so its hangs
        // and delays are judged against its deadline without moving the route's clock.
        let clock = step.isAsync ? RouteClock.virtual(startingAt: self.clock.now()) : self.clock
        switch fault {
        case .fail(let code, let retryable, _)?:
            throw failure(code == "unavailable" ? .connectionFailed : SkyError.Code(wire: code), "scripted fault: \(code)", retryable: retryable)
        case .reset?:
            throw failure(.connectionFailed, "scripted fault: the instance died mid-call (connection reset)", retryable: true)
        case .hang?:
            if let deadline { clock.advance(to: deadline) }
            throw failure(.deadlineExceeded, "scripted fault: no answer before the deadline", retryable: true)
        case .delay(let delay)?:
            let done = clock.now() + TimeAmount(delay)
            if let deadline, done > deadline {
                clock.advance(to: deadline)
                throw failure(.deadlineExceeded, "scripted fault: slower (\(DurationParser.format(delay))) than its deadline", retryable: true)
            }
            clock.advance(to: done)
        case nil:
            break
        }
        let answer = self.scripts.withLock { scripts -> Int in
            scripts[service]?.answered += 1
            return scripts[service]?.answered ?? 1
        }
        guard let script = self.answers[service] else {
            throw ServiceDispatcher.Failure(error: SkyError(.noInstance, "the test scripts no answers for service '\(service)'", service: service), nodeID: nil)
        }
        guard answer <= script.count else {
            throw ServiceDispatcher.Failure(
                error: SkyError(.noInstance, "the test scripts \(script.count) answer(s) for '\(service)', and call \(number) was made", service: service),
                nodeID: instance.id
            )
        }
        switch script[answer - 1] {
        case .output(let document):
            return (ServiceResponse(payload: document), instance)
        case .failure(let code, let message, let retryable):
            throw failure(code == "unavailable" ? .connectionFailed : SkyError.Code(wire: code), message, retryable: retryable)
        }
    }

    /// Out-of-band steps run their first attempt inline, so their answers are used in order.
    public func runsPromptlyInProcess(_ step: RouteStep) -> Bool { true }
}
