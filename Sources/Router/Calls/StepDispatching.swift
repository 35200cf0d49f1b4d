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

    /// The in-process handler a call of `step` would go to, when every instance this router
    /// would pick for it is in-process and completes promptly (``PromptLane`` then calls it
    /// directly); `nil` otherwise.
    func promptHandler(for step: RouteStep) -> (handler: any ServiceHandler, nodeID: String)?

    /// Changes whenever ``promptHandler(for:)`` may answer otherwise (the registry cache's
    /// generation), so a plan made from its answers is kept until then.
    var instancesGeneration: Int { get }
}

extension StepDispatching {
    /// Dispatchers without in-process handlers (a route test's scripted one) have none: every
    /// call goes through ``call(_:request:deadline:excluding:)``.
    public func promptHandler(for step: RouteStep) -> (handler: any ServiceHandler, nodeID: String)? { nil }

    /// Without in-process handlers nothing changes what ``promptHandler(for:)`` answers.
    public var instancesGeneration: Int { 0 }
}

extension ServiceDispatcher: StepDispatching {}
