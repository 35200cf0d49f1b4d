public import NIOCore
public import RegistryKit
public import SkyLib
public import RouteModel
import Synchronization

/// Answers calls from a script instead of services: for each service, one answer per call, in
/// order (the first call gets the first answer, a retry the next). For route tests: no
/// registry, no network.
public final class ScriptedDispatcher: StepDispatching {
    private let answers: [String: [RouteTestFile.Answer]]
    private let calls = Mutex<[String: Int]>([:])

    /// Creates a `ScriptedDispatcher` answering from `answers`, by service.
    public init(answers: [String: [RouteTestFile.Answer]]) {
        self.answers = answers
    }

    /// How many calls each service got.
    public var callCounts: [String: Int] { self.calls.withLock { $0 } }

    public func call(
        _ step: RouteStep, request: RequestEnvelope, deadline: NIODeadline?, excluding: Set<String>
    ) async throws(ServiceDispatcher.Failure) -> (response: ServiceResponse, instance: NodeRecord) {
        let number = self.calls.withLock { calls -> Int in
            calls[step.service, default: 0] += 1
            return calls[step.service]!
        }
        // A fresh instance id per call, so a retry "goes elsewhere" as in a router.
        let instance = NodeRecord(id: "\(step.service)-\(number)", kind: .service, service: step.service, address: "script:\(step.service)", status: .ready)
        guard let script = self.answers[step.service] else {
            throw ServiceDispatcher.Failure(
                error: SkyError(.noInstance, "the test scripts no answers for service '\(step.service)'", service: step.service), nodeID: nil
            )
        }
        guard number <= script.count else {
            throw ServiceDispatcher.Failure(
                error: SkyError(.noInstance, "the test scripts \(script.count) answer(s) for '\(step.service)', and call \(number) was made", service: step.service),
                nodeID: instance.id
            )
        }
        switch script[number - 1] {
        case .output(let document):
            return (ServiceResponse(payload: document), instance)
        case .failure(let code, let message, let retryable):
            let skyCode = code == "unavailable" ? SkyError.Code.connectionFailed : SkyError.Code(wire: code)
            throw ServiceDispatcher.Failure(error: SkyError(skyCode, message, retryable: retryable, service: step.service), nodeID: instance.id)
        }
    }

    /// Out-of-band steps run their first attempt inline, so their answers are used in order.
    public func runsPromptlyInProcess(_ step: RouteStep) -> Bool { true }
}
