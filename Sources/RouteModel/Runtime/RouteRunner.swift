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

    /// Runs a batch of requests on `route` (looked up once by the caller), answering each
    /// request's outcome in their order: a bulk initiator's unit of work (a CSV batch's rows).
    /// A request not started because `shouldStop` said so first answers `nil` (its input is
    /// left to run again); requests already started finish.
    func run(batch requests: [RequestEnvelope], on route: Route, shouldStop: () -> Bool) async -> [Result<RouteResult, SkyError>?]

    /// Whether every step of `route` is answered at once in this process, so a batch of its
    /// requests runs step by step with nothing to wait on (a bulk initiator then sends bigger
    /// batches: they cost less per request, and no request waits behind a slow one).
    func runsPromptly(_ route: Route) -> Bool

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

    /// Runners without a batch lane run nothing promptly.
    public func runsPromptly(_ route: Route) -> Bool { false }

    /// Runners without a batch lane run a batch one request after another, asking
    /// `shouldStop` before each.
    public func run(batch requests: [RequestEnvelope], on route: Route, shouldStop: () -> Bool) async -> [Result<RouteResult, SkyError>?] {
        await Self.runEach(requests, shouldStop: shouldStop) { request async throws(SkyError) in try await self.run(request, on: route) }
    }

    /// Runs `requests` one after another through `body`, asking `shouldStop` before each; those
    /// after a stop answer `nil`.
    public static func runEach(
        _ requests: [RequestEnvelope], shouldStop: () -> Bool, body: (RequestEnvelope) async throws(SkyError) -> RouteResult
    ) async -> [Result<RouteResult, SkyError>?] {
        var results: [Result<RouteResult, SkyError>?] = []
        results.reserveCapacity(requests.count)
        for request in requests {
            guard !shouldStop() else {
                results.append(nil)
                continue
            }
            do throws(SkyError) {
                results.append(.success(try await body(request)))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    /// Runners that do not keep routes themselves look the route up again by name.
    public func run(_ request: RequestEnvelope, on route: Route) async throws(SkyError) -> RouteResult {
        try await self.run(request)
    }
}
