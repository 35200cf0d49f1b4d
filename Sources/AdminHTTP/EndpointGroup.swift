public import Hummingbird

/// Endpoints a node serves beside the admin ones, added by whoever assembles the node (the
/// registration API on routers), so the listener's module need not know them.
public protocol EndpointGroup: Sendable {
    /// Adds the endpoints to `router`, recording them in `table` (for 405 answers).
    func add<Context: RequestContext>(to router: Router<Context>, recording table: EndpointTable?)

    /// Adds the endpoints' operations to the process's OpenAPI document.
    func describe(in document: inout OpenAPIDocument)
}

extension EndpointGroup {
    /// Nothing: a group that does not describe itself is left out of the document.
    public func describe(in document: inout OpenAPIDocument) {}
}
