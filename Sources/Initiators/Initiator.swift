public import ServiceLifecycle

/// Something that turns outside events into route requests: an HTTP server, a drop folder, a
/// CSV folder, a STOMP subscription. Each is a `Service`: it runs until graceful shutdown (or
/// cancellation, when its route stops declaring it) and hands requests to a `RouteRunner`.
public protocol Initiator: Service {
    /// A short description for logs and the startup summary, e.g. `files drop/in → route greet`.
    var summary: String { get }
}
