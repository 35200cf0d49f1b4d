public import SkyLib

/// An OpenAPI 3.1 description of what one Skynet process serves over HTTP, put together by
/// the parts that serve it: the HTTP initiator adds one path per route (`POST /routes/NAME`,
/// so a client can be generated per route) and its listing, ``AdminEndpoints`` the admin
/// endpoints, an ``EndpointGroup`` its own (the registration API). Served at
/// `GET /openapi.json`; the example routes' document is kept in `docs/openapi.json`.
///
/// Built as JSON in code rather than from a static file or with swift-openapi-generator: the
/// paths change when route files do, at run time (docs/DECISIONS.md).
public struct OpenAPIDocument: Sendable {
    /// `info.title`.
    public var title: String
    /// `info.description`.
    public var summary: String
    /// path → lower-case method → operation object.
    public private(set) var paths: [String: [String: JSONValue]] = [:]
    /// Whether every operation needs `Authorization: Bearer …` (a token is set).
    public var requiresToken: Bool

    /// Creates an empty document.
    public init(title: String = "Skynet", summary: String = "", requiresToken: Bool = false) {
        self.title = title
        self.summary = summary
        self.requiresToken = requiresToken
    }

    /// Adds (or replaces) the operation for `method` (`get`, `post` …) at `path`
    /// (OpenAPI templating: `/v1/nodes/{id}`). A token, when set, adds its 401 answer.
    public mutating func add(_ method: String, _ path: String, _ operation: JSONValue) {
        var operation = operation
        if self.requiresToken, case .object(var fields) = operation, case .object(var responses)? = fields["responses"] {
            responses["401"] = Self.error("No or wrong `Authorization: Bearer` token.")
            fields["responses"] = .object(responses)
            operation = .object(fields)
        }
        self.paths[path, default: [:]][method] = operation
    }

    /// The document as JSON.
    public var json: JSONValue {
        var components: [String: JSONValue] = ["schemas": .object(Self.schemas)]
        var document: [String: JSONValue] = [
            "openapi": "3.1.0",
            "info": ["title": .string(self.title), "version": .string(Self.protocolVersion), "description": .string(self.summary)],
            "paths": .object(self.paths.mapValues { .object($0) }),
        ]
        if self.requiresToken {
            components["securitySchemes"] = ["token": ["type": "http", "scheme": "bearer", "description": "The cluster's SKYNET_TOKEN."]]
            document["security"] = [["token": []]]
        }
        document["components"] = .object(components)
        return .object(document)
    }

    /// The wire protocol's version (docs/PROTOCOL.md), the document's `info.version`.
    public static let protocolVersion = "1.0.0"

    // MARK: Pieces operations share

    /// A response with the JSON error body `{"error": {...}}`.
    public static func error(_ description: String) -> JSONValue {
        ["description": .string(description), "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
    }

    /// A JSON response whose body follows `schema`, with `headers` (name → header object).
    public static func json(_ description: String, schema: JSONValue, headers: [String: JSONValue] = [:]) -> JSONValue {
        var response: [String: JSONValue] = ["description": .string(description), "content": ["application/json": ["schema": schema]]]
        if !headers.isEmpty { response["headers"] = .object(headers) }
        return .object(response)
    }

    /// A reference to one of the shared schemas.
    public static func schema(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// A string response header described by `description`.
    public static func header(_ description: String, pattern: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "string"]
        if let pattern { schema["pattern"] = .string(pattern) }
        return ["description": .string(description), "schema": .object(schema)]
    }

    /// An optional string request header `name`: the same object as ``header(_:pattern:)``
    /// with its name and place.
    public static func headerParameter(_ name: String, _ description: String, pattern: String? = nil) -> JSONValue {
        guard case .object(var fields) = Self.header(description, pattern: pattern) else { return .null }
        fields["name"] = .string(name)
        fields["in"] = "header"
        fields["required"] = false
        return .object(fields)
    }

    /// The shared schemas: the error body, a route summary, a node record, health.
    static let schemas: [String: JSONValue] = [
        "Error": [
            "type": "object", "required": ["error"],
            "properties": [
                "error": [
                    "type": "object", "required": ["code", "message"],
                    "properties": [
                        "code": ["type": "string", "description": "Stable code: bad_request, route_not_found, step_failed, deadline_exceeded …"],
                        "message": ["type": "string", "description": "What went wrong and where, for a person."],
                        "retryable": ["type": "boolean"],
                        "route": ["type": "string"],
                        "step": ["type": "integer", "description": "The step's index (0 for the first)."],
                        "service": ["type": "string"],
                    ],
                ]
            ],
        ],
        "RouteSummary": [
            "type": "object", "required": ["name", "revision", "steps"],
            "properties": [
                "name": ["type": "string"], "revision": ["type": "integer"], "file": ["type": "string"],
                "loadedAt": ["type": "string", "format": "date-time"], "description": ["type": "string"], "timeout": ["type": "string"],
                "rate": ["type": "string"], "dedupe": ["type": "object"], "steps": ["type": "array", "items": ["type": "object"]],
            ],
        ],
        "RouteProblem": [
            "type": "object", "required": ["file", "reason", "message"],
            "description": "A route file the router refused at its last load; the last good revision keeps serving.",
            "properties": [
                "file": ["type": "string"], "line": ["type": "integer"], "column": ["type": "integer"], "reason": ["type": "string"],
                "message": ["type": "string", "description": "FILE:LINE: reason"], "route": ["type": "string"],
                "serving": ["type": "integer", "description": "The revision still served for the route (its last good one)."],
                "at": ["type": "string", "format": "date-time"],
            ],
        ],
        "Node": [
            "type": "object", "required": ["id", "service", "address"],
            "properties": [
                "id": ["type": "string"], "kind": ["type": "string"], "service": ["type": "string"], "version": ["type": "string"],
                "region": ["type": "string"], "environment": ["type": "string"], "address": ["type": "string"], "status": ["type": "string"],
            ],
        ],
        "Health": ["type": "object", "required": ["status"], "properties": ["status": ["type": "string"]]],
        "Progress": [
            "type": "object", "required": ["kind", "route", "name", "unit", "done", "fraction", "rate"],
            "properties": [
                "kind": ["type": "string", "enum": ["csv", "files"]], "route": ["type": "string"],
                "name": ["type": "string", "description": "The CSV file, or the drop folder."], "unit": ["type": "string", "enum": ["rows", "files"]],
                "done": ["type": "integer"], "total": ["type": "integer", "description": "Files found (drop folders)."],
                "fraction": ["type": "number", "minimum": 0, "maximum": 1], "rate": ["type": "number", "description": "Rows or files a second."],
                "secondsLeft": ["type": "number"], "bytesDone": ["type": "integer"], "bytesTotal": ["type": "integer"], "startedAt": ["type": "number"],
            ],
        ],
    ]
}
