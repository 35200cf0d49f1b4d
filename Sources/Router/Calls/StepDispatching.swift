public import NIOCore
public import SkyLib
public import RouteModel
public import RegistryKit

/// What the executor needs to make one call of a step: ``ServiceDispatcher`` in a router,
/// ``ScriptedDispatcher`` in route tests (`sky route test`).
public protocol StepDispatching: Sendable {
    /// Calls `step.service` once, under `deadline`, avoiding the instances in `excluding`.
    func call(
        _ step: RouteStep, request: RequestEnvelope, deadline: NIODeadline?, excluding: Set<String>
    ) async throws(ServiceDispatcher.Failure) -> (response: ServiceResponse, instance: NodeRecord)

    /// Whether a call of `step` completes promptly without leaving the process (out-of-band
    /// steps then run their first attempt inline).
    func runsPromptlyInProcess(_ step: RouteStep) -> Bool
}

extension ServiceDispatcher: StepDispatching {}
