import Foundation

/// The seam between initiators and the router: initiators hand requests to a `RouteRunner`
/// and never know how routes run. The `sky` tool wires the router in.
public protocol RouteRunner: Sendable {
    /// Runs the route named in `request.route`.
    /// - Throws: ``SkyError``: `.routeNotFound`, `.stepFailed`, `.deadlineExceeded`, …
    func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult

    /// The routes currently served.
    func routeSummaries() -> [RouteSummary]

    /// The route named `name`, if served.
    func route(named name: String) -> Route?

    /// Decides which new requests are traced: initiators draw their requests' root traces
    /// from it, so one rate holds for every initiator of the process.
    var sampler: TraceSampler { get }
}
