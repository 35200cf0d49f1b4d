public import Hummingbird
public import SkyLib

/// The endpoints every Skynet process serves: `GET /health`, `GET /debug/vars` (JSON counters),
/// `GET /debug/progress` (long work in flight) and `GET /metrics` (Prometheus text format).
public struct AdminEndpoints: Sendable {
    /// Counters shown at `/debug/vars`.
    public var counters: Counters
    /// Answers the health document and whether the process is healthy (200) or not (503).
    public var health: @Sendable () -> (healthy: Bool, document: JSONValue)
    /// Extra fields for `/debug/vars` (live gauges).
    public var extraVars: @Sendable () -> [String: JSONValue]
    /// The `/debug/stats` document (routers: per-route and per-step latency), when there is one.
    public var stats: (@Sendable () -> JSONValue)?
    /// More endpoints served beside these (routers: the registration API).
    public var more: [any EndpointGroup] = []

    /// Creates an `AdminEndpoints` from its parts.
    public init(
        counters: Counters,
        health: @escaping @Sendable () -> (healthy: Bool, document: JSONValue) = { (true, ["status": "ok"]) },
        extraVars: @escaping @Sendable () -> [String: JSONValue] = { [:] },
        stats: (@Sendable () -> JSONValue)? = nil
    ) {
        self.counters = counters
        self.health = health
        self.extraVars = extraVars
        self.stats = stats
    }

    /// Adds the endpoints' operations (and those of ``more``) to `document`.
    public func describe(in document: inout OpenAPIDocument) {
        document.add("get", "/health", [
            "summary": "Whether the process is healthy", "operationId": "health", "tags": ["admin"],
            "responses": [
                "200": OpenAPIDocument.json("Healthy.", schema: OpenAPIDocument.schema("Health")),
                "503": OpenAPIDocument.json("Not healthy (draining, or a part has stopped).", schema: OpenAPIDocument.schema("Health")),
            ],
        ])
        document.add("get", "/debug/vars", [
            "summary": "Counters and gauges as JSON (expvar style)", "operationId": "debugVars", "tags": ["admin"],
            "responses": ["200": OpenAPIDocument.json("Name → value.", schema: ["type": "object"])],
        ])
        document.add("get", "/debug/progress", [
            "summary": "Long work in flight: CSV files (bytes and rows done) and drop folders' backlogs (files done of found)",
            "operationId": "debugProgress", "tags": ["admin"],
            "responses": [
                "200": OpenAPIDocument.json(
                    "What is in flight, oldest first.",
                    schema: ["type": "object", "required": ["progress"], "properties": ["progress": ["type": "array", "items": OpenAPIDocument.schema("Progress")]]]
                )
            ],
        ])
        if self.stats != nil {
            document.add("get", "/debug/stats", [
                "summary": "Per-route and per-step latency", "operationId": "debugStats", "tags": ["admin"],
                "responses": ["200": OpenAPIDocument.json("The router's statistics.", schema: ["type": "object"])],
            ])
        }
        document.add("get", "/metrics", [
            "summary": "Prometheus text exposition", "operationId": "metrics", "tags": ["admin"],
            "responses": ["200": ["description": "Metrics.", "content": ["text/plain": ["schema": ["type": "string"]]]]],
        ])
        for group in self.more { group.describe(in: &document) }
    }

    /// Adds the endpoints to `router`, recording them in `table` (for 405 answers).
    public func add<Context: RequestContext>(to router: Router<Context>, recording table: EndpointTable? = nil) {
        for path in ["health", "debug/vars", "debug/progress", "metrics"] + (self.stats == nil ? [] : ["debug/stats"]) { table?.record(.get, path) }
        router.get("health") { _, _ -> Response in
            let (healthy, document) = self.health()
            return .json(document, status: healthy ? .ok : .serviceUnavailable)
        }
        router.get("debug/vars") { _, _ -> Response in
            .json(self.counters.debugVars(extra: self.extraVars()))
        }
        router.get("debug/progress") { _, _ -> Response in
            .json(self.counters.progress.json)
        }
        if let stats = self.stats {
            router.get("debug/stats") { _, _ -> Response in .json(stats()) }
        }
        for group in self.more { group.add(to: router, recording: table) }
        router.get("metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(self.counters.prometheusText(extra: self.extraVars()))
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: buffer)
            )
        }
    }
}
