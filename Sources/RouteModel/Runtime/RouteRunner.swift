public import SkyLib
import Foundation

/// The seam between initiators and the router: initiators hand requests to a `RouteRunner`
/// and never know how routes run. The `sky` tool wires the router in.
public protocol RouteRunner: Sendable {
    /// Runs the route named in `request.route`.
    /// - Throws: `SkyError`: `.routeNotFound`, `.stepFailed`, `.deadlineExceeded`, …
    func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult

    /// Runs `route`, already looked up by the caller (who then keeps the revision it found,
    /// and no second lookup is made): an HTTP request checks its route before reading the
    /// body; a CSV batch looks its route up once for all its rows.
    func run(_ request: RequestEnvelope, on route: Route) async throws(SkyError) -> RouteResult

    /// The routes currently served.
    func routeSummaries() -> [RouteSummary]

    /// Route files refused at their last load, each while the last good revision serves.
    func routeProblems() -> [RouteProblem]

    /// Where the routes come from: the folder's path, or `registry`.
    var routeSource: String { get }

    /// The route named `name`, if served.
    func route(named name: String) -> Route?

    /// Decides which new requests are traced: initiators draw their requests' root traces
    /// from it, so one rate holds for every initiator of the process.
    var sampler: TraceSampler { get }
}

extension RouteRunner {
    /// Runners that load no files have no problems with them.
    public func routeProblems() -> [RouteProblem] { [] }

    /// Runners that load no files name no source.
    public var routeSource: String { "" }

    /// Runners that do not keep routes themselves look the route up again by name.
    public func run(_ request: RequestEnvelope, on route: Route) async throws(SkyError) -> RouteResult {
        try await self.run(request)
    }
}
