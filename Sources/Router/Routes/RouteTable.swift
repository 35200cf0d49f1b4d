public import Foundation
import SkyLib
public import RouteModel
import Synchronization

/// The routes a router serves, by name, each with its revision, file and load time.
///
/// Reads are a lock and a dictionary lookup, cheap enough for every request; writes come from
/// a loader (``RouteDirectoryLoader``) when a file changes.
public final class RouteTable: Sendable {
    private let routes = Mutex<[String: RouteSummary]>([:])

    /// Creates a `RouteTable` with the defaults.
    public init() {}

    /// The route named `name`.
    public func route(named name: String) -> Route? {
        self.routes.withLock { $0[name]?.route }
    }

    /// The route named `name`, with its revision and origin.
    public func summary(named name: String) -> RouteSummary? {
        self.routes.withLock { $0[name] }
    }

    /// Every route, sorted by name.
    public var summaries: [RouteSummary] {
        self.routes.withLock { Array($0.values) }.sorted { $0.route.name < $1.route.name }
    }

    /// Installs `route` from `file`, bumping its revision when it replaces an older version.
    /// - Returns: the installed summary.
    @discardableResult
    public func install(_ route: Route, file: String, at date: Date = Date()) -> RouteSummary {
        self.routes.withLock { routes in
            let revision = (routes[route.name]?.revision ?? 0) + 1
            let summary = RouteSummary(route: route, revision: revision, file: file, loadedAt: date)
            routes[route.name] = summary
            return summary
        }
    }

    /// Installs `route` with a revision decided elsewhere (routes pushed to the registry carry
    /// their own), replacing any older version.
    @discardableResult
    public func install(_ route: Route, file: String, revision: Int, at date: Date = Date()) -> RouteSummary {
        let summary = RouteSummary(route: route, revision: revision, file: file, loadedAt: date)
        self.routes.withLock { $0[route.name] = summary }
        return summary
    }

    /// Stops serving the route named `name`.
    public func remove(named name: String) {
        _ = self.routes.withLock { $0.removeValue(forKey: name) }
    }
}
