public import AdminHTTP
public import Hummingbird
public import Logging
public import NIOCore
import HTTPTypes
public import ServiceLifecycle
import SkyLib
public import RouteModel
public import TLS

/// The HTTP initiator: `POST /routes/NAME` with a JSON body runs route NAME and answers its
/// final document.
///
/// | Request | Answer |
/// |---|---|
/// | `POST /routes/NAME` | 200 and the final document; step errors recorded under `errOnFail: false` added as `errors` (objects only) and in the `Skynet-Errors` header |
/// | `GET /routes` | every route with its steps, revision, file and load time |
/// | `GET /routes/NAME` | one route |
/// | `GET /health`, `GET /debug/vars` | the admin endpoints |
///
/// A caller's W3C `traceparent`/`tracestate` joins the request to the caller's trace; every
/// answer carries `traceparent` naming the route's span, and `Skynet-Trace-Id`.
///
/// Failures answer a JSON error body `{"error": {"code", "message", "route", "step", "service"}}`:
/// 404 unknown route, 400 malformed JSON (with line and column), 413 body over the limit,
/// 502 a step failed, 504 the deadline passed.
public struct HTTPInitiator: Service {
    /// Where and how the initiator listens.
    public struct Configuration: Sendable {
        /// Interface to bind; `127.0.0.1` unless told otherwise.
        public var host: String = "127.0.0.1"
        /// Port to bind; 0 picks a free one.
        public var port: Int = 8080
        /// Largest request body accepted.
        public var maxBodyBytes: Int = 1024 * 1024
        /// Shared secret required as `Authorization: Bearer …` on every endpoint, when set.
        public var token: String?
        /// The process's TLS; the initiator speaks HTTPS when it serves a certificate.
        public var tls: NodeTLS?
        /// What a connection is allowed (idle and request timeouts, the connection cap).
        public var limits = HTTPLimits()

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// What this initiator was made with.
    public let configuration: Configuration
    private let runner: any RouteRunner
    private let admin: AdminEndpoints
    private let logger: Logger
    private let onServerRunning: @Sendable (String) async -> Void
    /// The event loops the listener runs on (the node's).
    private let eventLoopGroup: any EventLoopGroup
    /// Where failed requests of routes with `keepFailed: true` are kept (`sky failed`).
    private let failures: any FailedInputs

    /// - Parameters:
    ///   - failures: where failed requests of routes with `keepFailed: true` are reported.
    ///   - onServerRunning: called with `HOST:PORT` once the server listens.
    public init(
        configuration: Configuration,
        runner: any RouteRunner,
        admin: AdminEndpoints,
        eventLoopGroup: any EventLoopGroup,
        failures: any FailedInputs = NoFailedInputs(),
        logger: Logger,
        onServerRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.failures = failures
        self.configuration = configuration
        self.runner = runner
        self.admin = admin
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    /// The router with every endpoint; tests drive it without sockets.
    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        let table = EndpointTable()
        if let token = self.configuration.token {
            router.add(middleware: TokenMiddleware(token: token))
        }
        router.add(middleware: MethodNotAllowedMiddleware(table: table))
        table.record(.post, "routes/:name")
        table.record(.get, "routes/:name")
        table.record(.get, "routes")
        table.record(.get, "openapi.json")
        router.post("routes/:name") { request, context -> Response in
            await self.runRoute(request, name: context.parameters.get("name") ?? "")
        }
        router.get("routes") { _, _ -> Response in
            .json([
                "routes": .array(self.runner.routeSummaries().map(\.json)), "source": .string(self.runner.routeSource),
                "problems": .array(self.runner.routeProblems().map(\.json)),
            ])
        }
        router.get("routes/:name") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let summary = self.runner.routeSummaries().first(where: { $0.route.name == name }) else {
                return .error(SkyError(.routeNotFound, "no route named '\(name)'", route: name))
            }
            return .json(summary.json)
        }
        router.get("openapi.json") { _, _ -> Response in
            .json(self.openAPIDocument().json)
        }
        self.admin.add(to: router, recording: table)
        return router
    }

    /// The Hummingbird application serving ``buildRouter()``.
    public func buildApplication() -> some ApplicationProtocol {
        let onServerRunning = self.onServerRunning
        let host = self.configuration.host
        let tls = self.configuration.tls?.serves ?? false
        return Application(
            router: self.buildRouter(),
            server: self.configuration.limits.server(tls: self.configuration.tls),
            configuration: self.configuration.limits.configuration(host: host, port: self.configuration.port),
            onServerRunning: { channel in
                await onServerRunning(AdvertisedAddress.forListener(host: host, port: channel.localAddress?.port ?? 0, tls: tls))
            },
            eventLoopGroupProvider: .shared(self.eventLoopGroup),
            logger: self.logger
        )
    }

    public func run() async throws {
        try await Listener.run(self.buildApplication(), host: self.configuration.host, port: self.configuration.port)
    }

    func runRoute(_ request: Request, name: String) async -> Response {
        guard let route = self.runner.route(named: name) else {
            return .error(SkyError(.routeNotFound, "no route named '\(name)'; GET /routes lists them", route: name))
        }
        var request = request
        let payload: JSONValue
        do {
            payload = try await request.jsonBody(limit: self.configuration.maxBodyBytes)
        } catch {
            return .error(error)
        }
        let trace = self.trace(of: request)
        let requestID = request.headers[SkynetHeaders.requestID].flatMap { $0.isEmpty || $0.count > 128 ? nil : $0 } ?? Identifiers.requestID()
        var envelope = RequestEnvelope(id: requestID, route: name, payload: payload, meta: ["source": "http"], trace: trace)
        if let timeout = request.headers[SkynetHeaders.timeout].flatMap({ Int64($0) }), timeout > 0 {
            envelope.deadline = WallClock.epochMilliseconds() + timeout
        }
        // Appended, not set: the fields are new, and a set searches them first (per request).
        var headers = HTTPFields()
        headers.reserveCapacity(5)
        headers.append(HTTPField(name: SkynetHeaders.requestID, value: envelope.id))
        let traceID = envelope.trace.traceID
        let traceparent = TraceContext.traceparent(traceID: traceID, spanID: envelope.trace.spanID, sampled: envelope.trace.sampled)
        headers.append(HTTPField(name: SkynetHeaders.traceID, value: traceID))
        if let traceparent { headers.append(HTTPField(name: Self.traceparent, value: traceparent)) }
        do {
            let result = try await self.runner.run(envelope, on: route)
            if result.meta["deduplicated"] == "true" { headers[SkynetHeaders.deduplicated] = "true" }
            var body = result.payload
            if !result.errors.isEmpty {
                let errors = JSONValue.array(result.errors.map(\.json))
                headers[SkynetHeaders.errors] = JSONWriter.string(errors, asciiOnly: true)
                if case .object(var fields) = body {
                    fields["errors"] = errors
                    body = .object(fields)
                }
            }
            return .json(body, headers: headers)
        } catch {
            if route.keepFailed, Self.keeps(error) {
                // The body as parsed, written again: the request's own bytes are gone by now.
                self.failures.failed(FailedInput(
                    route: name, source: .http, resource: "http", identity: .fresh, input: Array(JSONWriter.string(payload).utf8),
                    details: ["requestId": envelope.id], error: error, traceID: envelope.trace.sampled ? envelope.trace.traceID : nil
                ))
            }
            return .error(error, headers: headers)
        }
    }

    /// Whether a failed request is kept for `keepFailed: true`: a failure of the route's work,
    /// not the caller's refusal at the door (rate limit), nor a stop (draining, cancelled).
    static func keeps(_ error: SkyError) -> Bool {
        ![.rateLimited, .draining, .cancelled, .routeNotFound, .unauthorized].contains(error.code)
    }

    /// The OpenAPI 3.1 document of this listener: one `POST /routes/NAME` per route loaded
    /// now, the listing, and the admin endpoints (with the registration API where served).
    public func openAPIDocument() -> OpenAPIDocument {
        var document = OpenAPIDocument(
            title: "Skynet",
            summary: "A Skynet router's HTTP surface: one POST per route (its body is the request's document, its answer the route's final document), the route listing, and the admin endpoints. Generated from the routes loaded when it was asked for.",
            requiresToken: self.configuration.token != nil
        )
        let requestHeaders: JSONValue = [
            OpenAPIDocument.headerParameter("Skynet-Request-Id", "The request's id (1 to 128 characters); a new one when absent."),
            OpenAPIDocument.headerParameter("Skynet-Timeout-Ms", "Milliseconds the caller will wait; the route's deadline.", pattern: "^[0-9]{1,12}$"),
            OpenAPIDocument.headerParameter("Skynet-Trace", "1 records this request's trace whatever the sampling rate.", pattern: "^[01]$"),
            OpenAPIDocument.headerParameter("Skynet-Trace-Id", "Run under this trace id (at most 64 characters)."),
            OpenAPIDocument.headerParameter("traceparent", "W3C trace context: the request joins the caller's trace."),
            OpenAPIDocument.headerParameter("tracestate", "W3C trace state, carried to every service call."),
        ]
        let answerHeaders: [String: JSONValue] = [
            "Skynet-Request-Id": OpenAPIDocument.header("The request's id."), "Skynet-Trace-Id": OpenAPIDocument.header("The request's trace id."),
            "traceparent": OpenAPIDocument.header("W3C trace context naming the route's span."),
            "Skynet-Errors": OpenAPIDocument.header("Step errors recorded under errOnFail: false, as a JSON array."),
            "Skynet-Deduplicated": OpenAPIDocument.header("true on the answer to a duplicate (dedupe: routes)."),
        ]
        let any: JSONValue = ["description": "Any JSON value."]
        for summary in self.runner.routeSummaries().sorted(by: { $0.route.name < $1.route.name }) {
            let route = summary.route
            let steps = route.steps.map(\.json).map { JSONWriter.string($0) }.joined(separator: ", ")
            document.add("post", "/routes/\(route.name)", [
                "summary": .string(route.description ?? "Run route \(route.name)"),
                "description": .string("Route `\(route.name)` (\(summary.file)), steps: \(steps)."),
                "operationId": .string("route_\(route.name)"), "tags": ["routes"],
                "parameters": requestHeaders,
                "requestBody": ["required": true, "description": "The request's document.", "content": ["application/json": ["schema": any]]],
                "responses": [
                    "200": OpenAPIDocument.json("The route's final document.", schema: any, headers: answerHeaders),
                    "400": OpenAPIDocument.error("The body is not JSON (the message names line and column)."),
                    "404": OpenAPIDocument.error("The route is gone (its file was removed)."),
                    "413": OpenAPIDocument.error("The body is over the limit."),
                    "422": OpenAPIDocument.error("A step's service refused the document (code rejected; the error names step and service)."),
                    "429": OpenAPIDocument.error("The route's rate limit is reached."),
                    "502": OpenAPIDocument.error("A step failed (the error names the step and service)."),
                    "503": OpenAPIDocument.error("No instance of a step's service, or its breaker is open, or the node is draining."),
                    "504": OpenAPIDocument.error("The deadline passed."),
                ],
            ])
        }
        document.add("get", "/routes", [
            "summary": "Every route with its steps, revision, file and load time", "operationId": "listRoutes", "tags": ["routes"],
            "responses": [
                "200": OpenAPIDocument.json(
                    "The routes, where they come from (a folder, or registry) and the files refused at their last load.",
                    schema: [
                        "type": "object", "required": ["routes"],
                        "properties": [
                            "routes": ["type": "array", "items": OpenAPIDocument.schema("RouteSummary")], "source": ["type": "string"],
                            "problems": ["type": "array", "items": OpenAPIDocument.schema("RouteProblem")],
                        ],
                    ]
                )
            ],
        ])
        document.add("get", "/routes/{name}", [
            "summary": "One route", "operationId": "getRoute", "tags": ["routes"],
            "parameters": [["name": "name", "in": "path", "required": true, "schema": ["type": "string"]]],
            "responses": [
                "200": OpenAPIDocument.json("The route.", schema: OpenAPIDocument.schema("RouteSummary")),
                "404": OpenAPIDocument.error("No route by that name."),
            ],
        ])
        document.add("get", "/openapi.json", [
            "summary": "This document", "operationId": "openAPI", "tags": ["admin"],
            "responses": ["200": OpenAPIDocument.json("OpenAPI 3.1.", schema: ["type": "object"])],
        ])
        self.admin.describe(in: &document)
        return document
    }

    static let traceparent = HTTPField.Name(TraceContext.W3CHeader.traceparent)!
    static let tracestate = HTTPField.Name(TraceContext.W3CHeader.tracestate)!

    /// The request's trace: the caller's W3C trace when it sent a valid `traceparent` (which
    /// wins over `Skynet-Trace-Id`), else a new root, sampled by the router's sampler or
    /// forced with `Skynet-Trace: 1`, under the caller's `Skynet-Trace-Id` when it gave one.
    func trace(of request: Request) -> TraceContext {
        let forced = request.headers[SkynetHeaders.trace] == "1"
        if let traceparent = request.headers[Self.traceparent],
            let joined = TraceContext.joining(traceparent: traceparent, tracestate: request.headers[Self.tracestate], forced: forced)
        {
            return joined
        }
        var trace = self.runner.sampler.root(forced: forced)
        if let traceID = request.headers[SkynetHeaders.traceID], !traceID.isEmpty, traceID.count <= 64 {
            trace.traceID = traceID
        }
        return trace
    }
}
