public import Hummingbird

/// Endpoints a node serves beside the admin ones, added by whoever assembles the node (the
/// registration API on routers), so the listener's module need not know them.
public protocol EndpointGroup: Sendable {
    /// Adds the endpoints to `router`, recording them in `table` (for 405 answers).
    func add<Context: RequestContext>(to router: Router<Context>, recording table: EndpointTable?)
}
