public import Foundation

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

/// The outcome of a route that finished: the final document and errors recorded on the way.
public struct RouteResult: Sendable, Hashable {
    /// The final document.
    public var payload: JSONValue
    /// The request's meta after every step added to it.
    public var meta: [String: String]
    /// Errors of steps with `errOnFail: false` and errors services reported.
    public var errors: [StepError]

    /// Creates a `RouteResult` from its parts.
    public init(payload: JSONValue, meta: [String: String] = [:], errors: [StepError] = []) {
        self.payload = payload
        self.meta = meta
        self.errors = errors
    }
}

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
        return .object(fields)
    }
}

extension RouteStep {
    /// The step as JSON, with defaults left out.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["service": .string(self.service)]
        if let version { fields["version"] = .string(version) }
        if self.isAsync { fields["async"] = true }
        if self.merge { fields["merge"] = true }
        if !self.errOnFail { fields["errOnFail"] = false }
        if self.retry.attempts > 1 {
            fields["retry"] = [
                "attempts": .int(Int64(self.retry.attempts)),
                "backoff": .string(DurationParser.format(self.retry.backoff)),
                "max": .string(DurationParser.format(self.retry.max)),
            ]
        }
        if let timeout { fields["timeout"] = .string(DurationParser.format(timeout)) }
        return .object(fields)
    }
}

extension RouteResult {
    /// The document as initiators hand it back: the final document, with recorded step
    /// errors added as `errors` when it is an object (the original's `Errors` field).
    public var answerDocument: JSONValue {
        guard !self.errors.isEmpty, case .object(var fields) = self.payload else { return self.payload }
        fields["errors"] = .array(self.errors.map(\.json))
        return .object(fields)
    }
}
