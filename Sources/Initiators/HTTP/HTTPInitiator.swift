public import AdminHTTP
public import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle
public import SkyLib
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

        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// What this initiator was made with.
    public let configuration: Configuration
    private let runner: any RouteRunner
    private let admin: AdminEndpoints
    private let logger: Logger
    private let onServerRunning: @Sendable (String) async -> Void

    /// - Parameter onServerRunning: called with `HOST:PORT` once the server listens.
    public init(
        configuration: Configuration,
        runner: any RouteRunner,
        admin: AdminEndpoints,
        logger: Logger,
        onServerRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.runner = runner
        self.admin = admin
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
        router.post("routes/:name") { request, context -> Response in
            await self.runRoute(request, name: context.parameters.get("name") ?? "")
        }
        router.get("routes") { _, _ -> Response in
            .json(["routes": .array(self.runner.routeSummaries().map(\.json))])
        }
        router.get("routes/:name") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let summary = self.runner.routeSummaries().first(where: { $0.route.name == name }) else {
                return .error(SkyError(.routeNotFound, "no route named '\(name)'", route: name))
            }
            return .json(summary.json)
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
            server: HTTPLimits.process.server(tls: self.configuration.tls),
            configuration: HTTPLimits.process.configuration(host: host, port: self.configuration.port),
            onServerRunning: { channel in
                await onServerRunning(AdvertisedAddress.forListener(host: host, port: channel.localAddress?.port ?? 0, tls: tls))
            },
            logger: self.logger
        )
    }

    public func run() async throws {
        try await Listener.run(self.buildApplication(), host: self.configuration.host, port: self.configuration.port)
    }

    func runRoute(_ request: Request, name: String) async -> Response {
        guard self.runner.route(named: name) != nil else {
            return .error(SkyError(.routeNotFound, "no route named '\(name)'; GET /routes lists them", route: name))
        }
        var request = request
        let payload: JSONValue
        do {
            payload = try await request.jsonBody(limit: self.configuration.maxBodyBytes)
        } catch {
            return .error(error)
        }
        var trace = self.runner.sampler.root(forced: request.headers[SkynetHeaders.trace] == "1")
        if let traceID = request.headers[SkynetHeaders.traceID], !traceID.isEmpty, traceID.count <= 64 {
            trace.traceID = traceID
        }
        let requestID = request.headers[SkynetHeaders.requestID].flatMap { $0.isEmpty || $0.count > 128 ? nil : $0 } ?? Identifiers.requestID()
        var envelope = RequestEnvelope(id: requestID, route: name, payload: payload, meta: ["source": "http"], trace: trace)
        if let timeout = request.headers[SkynetHeaders.timeout].flatMap({ Int64($0) }), timeout > 0 {
            envelope.deadline = WallClock.epochMilliseconds() + timeout
        }
        var headers = HTTPFields()
        headers[SkynetHeaders.requestID] = envelope.id
        headers[SkynetHeaders.traceID] = envelope.trace.traceID
        do {
            let result = try await self.runner.run(envelope)
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
            return .error(error, headers: headers)
        }
    }
}
