public import NIOCore

/// What a service does with one request. Implement this to write a service in Swift.
///
/// ```swift
/// struct Greet: ServiceHandler {
///     func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
///         var document = request.payload
///         document["greeting"] = "hello"
///         return ServiceResponse(payload: document)
///     }
/// }
/// ```
/// Throw a ``SkyError`` to fail the call: set `retryable: true` when another try (maybe on
/// another instance) could succeed. Any other error is reported as a non-retryable
/// `service_error`. The request's ``RequestEnvelope/deadline`` says when the caller gives up;
/// the task is cancelled then, so long work should check `Task.checkCancellation()`.
public protocol ServiceHandler: Sendable {
    /// Handles one request and answers the output document.
    func handle(_ request: RequestEnvelope) async throws -> ServiceResponse

    /// `true` when `handle` only computes and never waits (no I/O, no sleeping): an
    /// in-process call is then run directly instead of being raced against its deadline,
    /// which could not interrupt pure computation anyway and costs two tasks per call.
    /// Defaults to `false`.
    var completesPromptly: Bool { get }
}

extension ServiceHandler {
    public var completesPromptly: Bool { false }

    /// Handles `request` by `deadline`: raced against it (``withDeadline(_:watchdog:operation:)``,
    /// which throws ``DeadlineExceeded``) unless the handler completes promptly, when a race
    /// could not interrupt it anyway and would only cost two tasks.
    public func handle(_ request: RequestEnvelope, before deadline: NIODeadline?, watchdog: DeadlineWatchdog) async throws -> ServiceResponse {
        if self.completesPromptly { return try await self.handle(request) }
        return try await withDeadline(deadline, watchdog: watchdog) { try await self.handle(request) }
    }
}

/// A service as the engine knows it: a name, a version and its handler.
public struct ServiceDefinition: Sendable {
    /// The name routes call it by (`service:` in a step).
    public var name: String
    /// Its semantic version, registered with every instance (`version:` selects on it).
    public var version: String
    /// What answers its requests.
    public var handler: any ServiceHandler

    /// Creates a `ServiceDefinition` from its parts.
    public init(name: String, version: String = "1.0.0", handler: any ServiceHandler) {
        self.name = name
        self.version = version
        self.handler = handler
    }
}

/// Where in-process handlers are found: the router calls these directly, skipping the socket.
public protocol LocalServiceDirectory: Sendable {
    /// The in-process handler for a node id, if the node is hosted in this process.
    func handler(forNode nodeID: String) -> (any ServiceHandler)?
}
