/// What a service answers: the output document, extra meta, and errors recorded on the way.
public struct ServiceResponse: Sendable, Hashable {
    /// The output document.
    public var payload: JSONValue
    /// String facts to add to the request's meta.
    public var meta: [String: String]
    /// Errors recorded without failing (the original Skynet's `Errors []string`).
    public var errors: [StepError]
    /// Seconds the service says it spent on the call (its `Server-Timing: …;dur=MS` header),
    /// when it says; not part of the JSON. Routers record it as the service's span.
    public var serverDuration: Double?

    /// Creates a `ServiceResponse` from its parts.
    public init(payload: JSONValue, meta: [String: String] = [:], errors: [StepError] = []) {
        self.payload = payload
        self.meta = meta
        self.errors = errors
    }
}

extension ServiceResponse {
    /// The response as its wire JSON object.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["payload": self.payload]
        if !self.meta.isEmpty { fields["meta"] = .object(self.meta.mapValues { .string($0) }) }
        if !self.errors.isEmpty { fields["errors"] = .array(self.errors.map(\.json)) }
        return .object(fields)
    }

    /// Reads a response from its wire JSON object.
    /// - Throws: ``SkyError`` with code `.badResponse` when the object is not a response.
    public init(json: JSONValue) throws(SkyError) {
        guard case .object(let fields) = json, let payload = fields["payload"] else {
            throw SkyError(.badResponse, "service response must be an object with a \"payload\" field")
        }
        var meta: [String: String] = [:]
        for (key, value) in fields["meta"]?.objectValue ?? [:] {
            if let string = value.stringValue { meta[key] = string }
        }
        let errors = (fields["errors"]?.arrayValue ?? []).compactMap(StepError.init(json:))
        self.init(payload: payload, meta: meta, errors: errors)
    }
}
