/// The one error type of Skynet: a stable code, a message for a person, whether a retry may
/// help, and where it happened (route, step, service, instance).
///
/// Codes wrap a private enum, the swift-server idiom, so new codes can be added without
/// breaking anyone who switches over the public ones.
public struct SkyError: Error, Sendable, Hashable {
    /// A stable, machine-readable error code; its `description` is the wire spelling.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum _Code: String, Hashable, Sendable {
            case badRequest = "bad_request"
            case badResponse = "bad_response"
            case routeNotFound = "route_not_found"
            case invalidRoute = "invalid_route"
            case payloadTooLarge = "payload_too_large"
            case stepFailed = "step_failed"
            case rejected = "rejected"
            case deadlineExceeded = "deadline_exceeded"
            case noInstance = "no_instance"
            case connectionFailed = "connection_failed"
            case serviceError = "service_error"
            case registry = "registry_error"
            case configuration = "configuration_error"
            case unauthorized = "unauthorized"
            case draining = "draining"
            case notFound = "not_found"
            case conflict = "conflict"
            case circuitOpen = "circuit_open"
            case rateLimited = "rate_limited"
            case cancelled = "cancelled"
            case `internal` = "internal_error"
        }

        private let code: _Code
        private init(_ code: _Code) { self.code = code }

        /// The request or its envelope is malformed.
        public static let badRequest = Code(.badRequest)
        /// A service answered something that is not a valid response.
        public static let badResponse = Code(.badResponse)
        /// No route has that name.
        public static let routeNotFound = Code(.routeNotFound)
        /// A route file is invalid.
        public static let invalidRoute = Code(.invalidRoute)
        /// A body, header or row is over its size limit.
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// A route step failed for good; the route stopped.
        public static let stepFailed = Code(.stepFailed)
        /// A step's service refused the document itself (it answered `bad_request`): the
        /// caller's error, answered 422; the same document would fail again.
        public static let rejected = Code(.rejected)
        /// The route's or step's deadline passed.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// No live instance of the service is known.
        public static let noInstance = Code(.noInstance)
        /// The service could not be reached (refused, reset, closed).
        public static let connectionFailed = Code(.connectionFailed)
        /// The service ran and reported an error.
        public static let serviceError = Code(.serviceError)
        /// The registry could not be read or written.
        public static let registry = Code(.registry)
        /// A flag, address or setting is wrong.
        public static let configuration = Code(.configuration)
        /// A token was needed and missing or wrong.
        public static let unauthorized = Code(.unauthorized)
        /// The node is shutting down and takes no new work.
        public static let draining = Code(.draining)
        /// The thing asked for (a node, a record) does not exist.
        public static let notFound = Code(.notFound)
        /// The request clashes with what exists (a node another process owns).
        public static let conflict = Code(.conflict)
        /// The service's circuit breaker is open: the call failed fast, nothing was sent.
        public static let circuitOpen = Code(.circuitOpen)
        /// Over a route's or step's rate, and the request could not wait long enough.
        public static let rateLimited = Code(.rateLimited)
        /// The request was cut short before it finished: its process stopped and the drain
        /// limit passed. Not the request's failure: it is left to run again.
        public static let cancelled = Code(.cancelled)
        /// A bug or an unexpected condition.
        public static let `internal` = Code(.internal)

        /// The wire spelling, such as `step_failed`.
        public var description: String { self.code.rawValue }

        /// The code for a wire spelling; unknown spellings become `.serviceError`.
        public init(wire: String) {
            self.code = _Code(rawValue: wire) ?? .serviceError
        }
    }

    /// What kind of error this is.
    public var code: Code
    /// What went wrong, for a person.
    public var message: String
    /// Whether trying again (perhaps on another instance) may succeed.
    public var isRetryable: Bool
    /// The route, when known.
    public var route: String?
    /// The 1-based step number, when known.
    public var step: Int?
    /// The service, when known.
    public var service: String?

    /// Creates a `SkyError` from its parts.
    public init(
        _ code: Code,
        _ message: String,
        retryable: Bool = false,
        route: String? = nil,
        step: Int? = nil,
        service: String? = nil
    ) {
        self.code = code
        self.message = message
        self.isRetryable = retryable
        self.route = route
        self.step = step
        self.service = service
    }
}

extension SkyError: CustomStringConvertible {
    public var description: String {
        var prefix = ""
        if let route { prefix += "route \(route): " }
        if let step, let service {
            prefix += "step \(step) (\(service)): "
        } else if let service {
            prefix += "\(service): "
        }
        return "\(prefix)\(self.message) [\(self.code)]"
    }
}

extension SkyError {
    /// The error as the JSON body every Skynet HTTP endpoint answers:
    /// `{"error": {"code", "message", "retryable", "route"?, "step"?, "service"?}}`.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "code": .string(self.code.description),
            "message": .string(self.message),
            "retryable": .bool(self.isRetryable),
        ]
        if let route { fields["route"] = .string(route) }
        if let step { fields["step"] = .int(Int64(step)) }
        if let service { fields["service"] = .string(service) }
        return ["error": .object(fields)]
    }

    /// Reads an error body `{"error": {...}}`; `nil` when the JSON is not one.
    public init?(json: JSONValue) {
        guard let error = json["error"], let message = error["message"]?.stringValue else { return nil }
        self.init(
            Code(wire: error["code"]?.stringValue ?? "service_error"),
            message,
            retryable: error["retryable"]?.boolValue ?? false,
            route: error["route"]?.stringValue,
            step: error["step"]?.intValue.map { Int($0) },
            service: error["service"]?.stringValue
        )
    }
}
