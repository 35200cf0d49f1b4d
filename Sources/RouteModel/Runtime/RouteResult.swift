public import SkyLib
import Foundation

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

extension RouteResult {
    /// The result as JSON, to keep (a dedupe answer): `{payload, meta, errors}`.
    public var json: JSONValue {
        ["payload": self.payload, "meta": .object(self.meta.mapValues { .string($0) }), "errors": .array(self.errors.map(\.json))]
    }

    /// Reads ``json`` back.
    public init(json: JSONValue) {
        self.init(
            payload: json["payload"] ?? .null,
            meta: (json["meta"]?.objectValue ?? [:]).compactMapValues(\.stringValue),
            errors: (json["errors"]?.arrayValue ?? []).compactMap(StepError.init(json:))
        )
    }

    /// The document as initiators hand it back: the final document, with recorded step
    /// errors added as `errors` when it is an object (the original's `Errors` field).
    public var answerDocument: JSONValue {
        guard !self.errors.isEmpty, case .object(var fields) = self.payload else { return self.payload }
        fields["errors"] = .array(self.errors.map(\.json))
        return .object(fields)
    }
}
