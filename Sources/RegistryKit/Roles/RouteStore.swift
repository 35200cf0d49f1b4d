public import Foundation
import SkyLib

/// Route files kept in the registry (`sky routes push`), for routers started with `--routes registry`.
public protocol RouteStore: Sendable {
    /// Routes pushed to the registry.
    func storedRoutes() async throws -> [StoredRoute]

    /// Stores routes: a route whose text changed gets the next revision, an unchanged one keeps
    /// its revision; with `prune`, stored routes not in `routes` are removed.
    /// - Returns: the stored routes after the change.
    @discardableResult
    func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute]
}

/// A route file kept in the registry so one push reaches every router.
public struct StoredRoute: Sendable, Hashable {
    /// The route's name (unique).
    public var name: String
    /// The route file's text.
    public var yaml: String
    /// The file it was pushed from, for messages.
    public var file: String
    /// Bumped on every pushed change.
    public var revision: Int
    /// When the text last changed.
    public var updatedAt: Date

    /// Creates a `StoredRoute` from its parts.
    public init(name: String, yaml: String, file: String, revision: Int = 0, updatedAt: Date = Date()) {
        self.name = name
        self.yaml = yaml
        self.file = file
        self.revision = revision
        self.updatedAt = updatedAt
    }
}
