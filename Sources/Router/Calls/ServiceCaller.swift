import NIOCore
public import SkyLib
import RouteModel

/// Calls other services from inside a service: composition without a route, through the
/// same registry cache, balancer, in-process shortcut and pooled HTTP client a router uses.
///
/// ```swift
/// struct Enrich: ServiceHandler {
///     let caller: ServiceCaller
///     func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
///         let upper = try await caller.call("uppercase", payload: request.payload, within: request)
///         return ServiceResponse(payload: ["original": request.payload, "shout": upper.payload])
///     }
/// }
/// ```
/// The call joins the caller's request: same request id, a child span of its trace, and a
/// deadline no later than the caller's. Retryable failures are tried again on another
/// instance, up to `attempts` times.
public struct ServiceCaller: Sendable {
    /// Picks the instance and makes the call, as a route step would.
    private let dispatcher: ServiceDispatcher
    /// Decides whether a call made outside any request starts a recorded trace.
    private let sampler: TraceSampler

    /// Creates a `ServiceCaller` from its parts.
    public init(dispatcher: ServiceDispatcher, sampler: TraceSampler = TraceSampler(perSecond: 100)) {
        self.dispatcher = dispatcher
        self.sampler = sampler
    }

    /// Calls `service` once (or again on retryable failures) and answers its response.
    /// - Parameters:
    ///   - version: a version selector (`1.*`); any version when `nil`.
    ///   - request: the request being handled, whose id, trace and deadline the call joins.
    public func call(
        _ service: String,
        version: String? = nil,
        payload: JSONValue,
        within request: RequestEnvelope? = nil,
        timeout: Duration = .seconds(5),
        attempts: Int = 3
    ) async throws(SkyError) -> ServiceResponse {
        var deadline = NIODeadline.now() + TimeAmount(timeout)
        if let remaining = request?.remainingMilliseconds { deadline = min(deadline, .now() + .milliseconds(remaining)) }
        let step = RouteStep(service: service, version: version, retry: RetryPolicy(attempts: max(1, attempts)))
        var envelope = RequestEnvelope(
            id: request?.id ?? Identifiers.requestID(),
            route: request?.route ?? "-",
            step: service,
            payload: payload,
            meta: request?.meta ?? [:],
            trace: request?.trace.child() ?? self.sampler.root()
        )
        var tried: Set<String> = []
        var attempt = 1
        while true {
            envelope.attempt = attempt
            envelope.deadline = WallClock.epochMilliseconds() + max(0, (deadline - .now()).nanoseconds / 1_000_000)
            do throws(ServiceDispatcher.Failure) {
                return try await self.dispatcher.call(step, request: envelope, deadline: deadline, excluding: tried).response
            } catch {
                if let node = error.nodeID { tried.insert(node) }
                let left = step.retry.attempts - attempt
                guard error.error.isRetryable, left > 0, NIODeadline.now() < deadline, !Task.isCancelled else { throw error.error }
                attempt += 1
            }
        }
    }
}
