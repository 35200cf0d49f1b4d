public import Foundation

/// One timed piece of a request's journey, as `sky trace` shows it.
///
/// A request makes a tree: the router's `route` span (the trace's root, started by the
/// initiator), a `call` span per attempt at a step (which instance, where, how long, how it
/// ended), and, when the service is a Swift `ServiceHost`, its own `service` span under the
/// call (time spent inside the service process).
public struct Span: Sendable, Hashable {
    /// Where in a request's path a span was recorded.
    public enum Kind: String, Sendable {
        /// A route run by a router, from the request's arrival to its answer.
        case route
        /// One attempt at a step, as the router saw it.
        case call
        /// One request handled inside a service process.
        case service
    }

    /// The request's trace: shared by every span of it.
    public var traceID: String
    /// This span's id, unique in its trace.
    public var spanID: String
    /// The span this one is under; `nil` for the root.
    public var parentID: String?
    /// Route, call or service.
    public var kind: Kind
    /// The route (route spans) or the service (call and service spans).
    public var name: String
    /// The route the request belongs to.
    public var route: String
    /// The node that recorded the span (router, initiator or service process).
    public var recorder: String
    /// The host the recording process runs on.
    public var host: String
    /// Call spans: the instance called and its address.
    public var instance: String?
    /// Call spans: where that instance listened.
    public var address: String?
    /// Call spans: 1 for the first attempt, 2 for the first retry …
    public var attempt: Int
    /// When it began (the recording host's clock).
    public var start: Date
    /// Duration in seconds.
    public var duration: Double
    /// Why it failed; `nil` when it succeeded.
    public var error: String?
    /// Route spans: the revision of the route the request ran on, start to end (a reload while
    /// it ran reaches the next request, not this one).
    public var revision: Int?

    /// Creates a `Span` from its parts.
    public init(
        traceID: String,
        spanID: String,
        parentID: String?,
        kind: Kind,
        name: String,
        route: String,
        recorder: String,
        host: String,
        instance: String? = nil,
        address: String? = nil,
        attempt: Int = 1,
        start: Date,
        duration: Double,
        error: String? = nil,
        revision: Int? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentID = parentID
        self.kind = kind
        self.name = name
        self.route = route
        self.recorder = recorder
        self.host = host
        self.instance = instance
        self.address = address
        self.attempt = attempt
        self.start = start
        self.duration = duration
        self.error = error
        self.revision = revision
    }

    /// The span as JSON (`sky trace --json`, the registries' documents).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "traceId": .string(self.traceID), "spanId": .string(self.spanID), "kind": .string(self.kind.rawValue),
            "name": .string(self.name), "route": .string(self.route), "recorder": .string(self.recorder),
            "host": .string(self.host), "attempt": .int(Int64(self.attempt)),
            "start": .double(self.start.timeIntervalSince1970), "duration": .double(self.duration),
        ]
        if let parentID { fields["parentId"] = .string(parentID) }
        if let instance { fields["instance"] = .string(instance) }
        if let address { fields["address"] = .string(address) }
        if let error { fields["error"] = .string(error) }
        if let revision { fields["revision"] = .int(Int64(revision)) }
        return .object(fields)
    }

    /// Reads a span written by ``json``; `nil` when required fields are missing.
    public init?(json: JSONValue) {
        guard
            let traceID = json["traceId"]?.stringValue, let spanID = json["spanId"]?.stringValue,
            let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)), let name = json["name"]?.stringValue
        else { return nil }
        self.init(
            traceID: traceID, spanID: spanID, parentID: json["parentId"]?.stringValue, kind: kind, name: name,
            route: json["route"]?.stringValue ?? "", recorder: json["recorder"]?.stringValue ?? "",
            host: json["host"]?.stringValue ?? "", instance: json["instance"]?.stringValue,
            address: json["address"]?.stringValue, attempt: Int(json["attempt"]?.intValue ?? 1),
            start: Date(timeIntervalSince1970: json["start"]?.doubleValue ?? 0),
            duration: json["duration"]?.doubleValue ?? 0, error: json["error"]?.stringValue,
            revision: json["revision"]?.intValue.map { Int($0) }
        )
    }
}
