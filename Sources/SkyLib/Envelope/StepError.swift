/// An error recorded by a route step that did not stop the route (`errOnFail: false`),
/// or reported by a service alongside its output.
public struct StepError: Sendable, Hashable {
    /// The service (step) that failed.
    public var service: String
    /// What went wrong, for a person.
    public var message: String
    /// Machine-readable code, as in ``SkyError/Code``.
    public var code: String

    /// Creates a `StepError` from its parts.
    public init(service: String, message: String, code: String) {
        self.service = service
        self.message = message
        self.code = code
    }
}

extension StepError {
    /// The error as a JSON object `{service, message, code}`.
    public var json: JSONValue {
        .object(["service": .string(self.service), "message": .string(self.message), "code": .string(self.code)])
    }

    /// Reads `{service, message, code}`; `nil` when it is not such an object.
    public init?(json: JSONValue) {
        guard let message = json["message"]?.stringValue else { return nil }
        self.init(
            service: json["service"]?.stringValue ?? "",
            message: message,
            code: json["code"]?.stringValue ?? "error"
        )
    }
}
