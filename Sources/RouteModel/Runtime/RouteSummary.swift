public import SkyLib
public import Foundation

/// A served route with its load history: what `GET /routes` shows.
public struct RouteSummary: Sendable, Hashable {
    /// The route as parsed.
    public var route: Route
    /// Starts at 1, bumped on every successful reload of the route.
    public var revision: Int
    /// The file it was loaded from, or `registry` for routes pushed to the registry.
    public var file: String
    /// When this revision was loaded.
    public var loadedAt: Date

    /// Creates a `RouteSummary` from its parts.
    public init(route: Route, revision: Int, file: String, loadedAt: Date) {
        self.route = route
        self.revision = revision
        self.file = file
        self.loadedAt = loadedAt
    }
}

extension RouteSummary {
    /// JSON as `GET /routes` lists it.
    public var json: JSONValue {
        let route = self.route
        var fields: [String: JSONValue] = [
            "name": .string(route.name),
            "revision": .int(Int64(self.revision)),
            "file": .string(self.file),
            "loadedAt": .string(ISO8601DateFormatter().string(from: self.loadedAt)),
            "steps": .array(route.steps.map(\.json)),
        ]
        if let description = route.description { fields["description"] = .string(description) }
        if let timeout = route.timeout { fields["timeout"] = .string(DurationParser.format(timeout)) }
        if let rate = route.rate { fields["rate"] = .string(rate.description) }
        if route.keepFailed { fields["keepFailed"] = true }
        if let dedupe = route.dedupe { fields["dedupe"] = ["key": .string(dedupe.key.description), "for": .string(DurationParser.format(dedupe.window))] }
        return .object(fields)
    }
}
