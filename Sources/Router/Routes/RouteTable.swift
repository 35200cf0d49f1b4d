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
    /// Files refused at their last load, by file.
    private let refused = Mutex<[String: RouteProblem]>([:])
    /// Where the routes come from: a folder's path, or `registry`.
    public let source: String

    /// Creates an empty `RouteTable` for routes from `source` (a folder's path, or `registry`).
    public init(source: String = "") {
        self.source = source
    }

    /// Files refused at their last load, by file name; each keeps its route's last good
    /// revision serving.
    public var problems: [RouteProblem] {
        self.refused.withLock { Array($0.values) }.sorted { $0.error.file < $1.error.file }
    }

    /// Records that `error.file` was refused; `route` is what the file held when it was last
    /// good (its revision, if still served, is named as serving).
    /// - Returns: the problem recorded.
    @discardableResult
    public func refuse(_ error: RouteFileError, route: String?, at date: Date = Date()) -> RouteProblem {
        let serving = route.flatMap { self.summary(named: $0) }.flatMap { $0.file == error.file ? $0.revision : nil }
        let problem = RouteProblem(error: error, route: route, serving: serving, at: date)
        self.refused.withLock { $0[error.file] = problem }
        return problem
    }

    /// Forgets `file`'s problem: it loaded, or went away.
    public func clearProblem(file: String) {
        _ = self.refused.withLock { $0.removeValue(forKey: file) }
    }

    /// Forgets the problems of route `name` (a pushed route that loaded or was removed, whatever
    /// file it came from).
    public func clearProblems(route name: String) {
        self.refused.withLock { refused in refused = refused.filter { $0.value.route != name } }
    }

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
            var route = route
            route.revision = revision
            route.plan = RoutePlanSlot()
            let summary = RouteSummary(route: route, revision: revision, file: file, loadedAt: date)
            routes[route.name] = summary
            return summary
        }
    }

    /// Installs `route` with a revision decided elsewhere (routes pushed to the registry carry
    /// their own), replacing any older version.
    @discardableResult
    public func install(_ route: Route, file: String, revision: Int, at date: Date = Date()) -> RouteSummary {
        var route = route
        route.revision = revision
        route.plan = RoutePlanSlot()
        let summary = RouteSummary(route: route, revision: revision, file: file, loadedAt: date)
        self.routes.withLock { $0[route.name] = summary }
        return summary
    }

    /// Stops serving the route named `name`.
    public func remove(named name: String) {
        _ = self.routes.withLock { $0.removeValue(forKey: name) }
    }
}
