public import NIOCore
public import RegistryKit
public import SkyLib
public import RouteModel

/// Makes one call of a step: picks an instance from the registry cache, calls it in-process
/// when it lives here (no socket, no JSON encoding) or over the wire otherwise, and keeps the
/// balancer's books.
public final class ServiceDispatcher: Sendable {
    /// A failed call and the instance it went to, so a retry can go elsewhere.
    public struct Failure: Error, Sendable {
        /// What went wrong.
        public var error: SkyError
        /// The instance called, when one was chosen.
        public var nodeID: String?
        /// Where the instance listens, when one was chosen.
        public var address: String?
    }

    /// Where instances are found (never the registry itself, on the request path).
    public let cache: RegistryCache
    /// Picks among the ready instances (least outstanding calls, in-process and own region first).
    public let balancer: InstanceBalancer
    /// Calls an instance in another process, over HTTP.
    private let client: any ServiceClient
    /// Services hosted in this process, called without a socket (`sky run`'s built-ins); `nil` when
    /// there are none.
    private let local: (any LocalServiceDirectory)?
    /// Times in-process calls (the wire client has its own timeouts).
    private let watchdog: DeadlineWatchdog

    /// - Parameter watchdog: the timer for in-process calls' deadlines; the node runtime hands
    ///   the process's one to its router and service hosts.
    public init(
        cache: RegistryCache, balancer: InstanceBalancer, client: any ServiceClient, local: (any LocalServiceDirectory)? = nil,
        watchdog: DeadlineWatchdog
    ) {
        self.cache = cache
        self.balancer = balancer
        self.client = client
        self.local = local
        self.watchdog = watchdog
    }

    /// Calls `step.service` once.
    /// - Parameters:
    ///   - deadline: when the call must have answered; travels with remote calls.
    /// - Returns: the response and the instance that answered it.
    public func call(
        _ step: RouteStep,
        request: RequestEnvelope,
        deadline: NIODeadline?,
        excluding: Set<String>
    ) async throws(Failure) -> (response: ServiceResponse, instance: NodeRecord) {
        let instances = self.cache.instances(of: step.service, version: step.version)
        let local = self.local
        guard
            let instance = self.balancer.choose(
                from: instances,
                excluding: excluding,
                isLocal: { local?.handler(forNode: $0) != nil }
            )
        else {
            let version = step.version.map { " matching version \($0)" } ?? ""
            throw Failure(
                error: SkyError(.noInstance, "no ready instance of service '\(step.service)'\(version) in the registry", retryable: true, service: step.service),
                nodeID: nil
            )
        }
        let inFlight = self.balancer.started(instance.id)
        defer { inFlight.finish() }
        do {
            if let handler = local?.handler(forNode: instance.id) {
                return (try await self.callLocal(handler, request: request, deadline: deadline, service: step.service), instance)
            }
            return (try await self.client.call(request, instance: instance, deadline: deadline), instance)
        } catch {
            if error.code == .connectionFailed { self.balancer.markUnreachable(instance.id) }
            throw Failure(error: error, nodeID: instance.id, address: instance.address)
        }
    }

    /// Whether a call of `step` would go to an in-process handler that completes promptly:
    /// the balancer prefers in-process instances, so this holds when there is at least one
    /// and every one of them completes promptly.
    public func runsPromptlyInProcess(_ step: RouteStep) -> Bool {
        self.promptHandler(for: step) != nil
    }

    /// The first in-process instance of `step.service`, when there is one and every in-process
    /// instance completes promptly (the balancer would pick one of them, and they compute the
    /// same answer). No in-flight books are kept for it: they only steer the balancer between
    /// instances, and in-process ones are always preferred.
    public func promptHandler(for step: RouteStep) -> (handler: any ServiceHandler, nodeID: String)? {
        guard let local = self.local else { return nil }
        var found: (handler: any ServiceHandler, nodeID: String)?
        for instance in self.cache.instances(of: step.service, version: step.version) {
            guard let handler = local.handler(forNode: instance.id) else { continue }
            guard handler.completesPromptly else { return nil }
            if found == nil { found = (handler, instance.id) }
        }
        return found
    }

    public var instancesGeneration: Int { self.cache.generation }

    /// Runs an in-process handler under the deadline (directly when it completes promptly);
    /// its errors become ``SkyError``s as they would over the wire.
    func callLocal(
        _ handler: any ServiceHandler,
        request: RequestEnvelope,
        deadline: NIODeadline?,
        service: String
    ) async throws(SkyError) -> ServiceResponse {
        do {
            return try await handler.handle(request, before: deadline, watchdog: self.watchdog)
        } catch {
            throw Self.localFailure(error, service: service)
        }
    }

    /// An in-process handler's error as the ``SkyError`` the same failure would be over the
    /// wire (naming the service).
    static func localFailure(_ error: any Error, service: String) -> SkyError {
        switch error {
        case var error as SkyError:
            error.service = error.service ?? service
            return error
        case is DeadlineExceeded:
            return SkyError(.deadlineExceeded, "did not answer in time", retryable: true, service: service)
        default:
            return SkyError(.serviceError, "\(error)", service: service)
        }
    }
}
