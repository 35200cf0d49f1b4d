public import AdminHTTP
import Hummingbird
public import Logging
public import NIOCore
public import ServiceLifecycle
import SkyLib
import RouteModel
public import TLS

/// `sky dashboard`: serves the live page, its JSON (`GET /api/state`) and the admin endpoints.
public struct DashboardServer: Service {
    /// The interface to listen on.
    public var host: String
    /// The port to listen on (0: a free one).
    public var port: Int
    /// Shared secret required as `Authorization: Bearer …` when set (but for `/health`).
    public var token: String?
    /// The process's TLS; the page is served over HTTPS when it serves a certificate.
    public var tls: NodeTLS?
    /// What a connection is allowed (the process's HTTP limits).
    public var limits = HTTPLimits()
    /// Keeps the view the pages render.
    private let watcher: ClusterWatcher
    /// `/health`, `/debug/vars`, `/metrics` of the dashboard process itself.
    private let admin: AdminEndpoints
    /// The process's logger.
    private let logger: Logger
    /// Told the address once the server listens (`sky dashboard` prints it).
    private let onServerRunning: @Sendable (String) async -> Void
    /// The event loops the listener runs on (the node's).
    private let eventLoopGroup: any EventLoopGroup

    /// Creates a `DashboardServer` from its parts.
    public init(
        host: String,
        port: Int,
        token: String?,
        tls: NodeTLS? = nil,
        watcher: ClusterWatcher,
        admin: AdminEndpoints,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        onServerRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.watcher = watcher
        self.admin = admin
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    /// Adds the page and its JSON to `router`.
    func addRoutes(to router: Router<BasicRequestContext>, recording table: EndpointTable) {
        table.record(.get, "/")
        table.record(.get, "api/state")
        router.get("/") { request, _ -> Response in
            let view = self.watcher.current
            let html = request.uri.queryParameters["part"] == "live" ? DashboardPage.live(view) : DashboardPage.page(view)
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: html))
            )
        }
        router.get("api/state") { _, _ -> Response in .json(self.watcher.current.json) }
        // The drills `sky drill` recorded in the registry, and their reports as JSON.
        table.record(.get, "drills")
        table.record(.get, "api/drills")
        router.get("drills") { _, _ -> Response in
            let reports = DrillsPage.reports(in: (try? await self.watcher.events(limit: DrillsPage.eventsRead)) ?? [])
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: DrillsPage.page(reports)))
            )
        }
        router.get("api/drills") { _, _ -> Response in
            let reports = DrillsPage.reports(in: (try? await self.watcher.events(limit: DrillsPage.eventsRead)) ?? [])
            return .json(.array(reports.map { $0.report }))
        }
        // The page's redrive button: POST failed/redrive?route=NAME with Skynet-Action: redrive
        // (behind the token like the page itself).
        table.record(.post, "failed/redrive")
        router.post("failed/redrive") { request, _ -> Response in
            // Basic credentials a browser cached go with any form another site posts here; the
            // header goes only with the page's own fetch.
            guard request.headers[SkynetHeaders.action] == "redrive" else {
                return .error(SkyError(.badRequest, "a redrive is asked with the header Skynet-Action: redrive (the dashboard's button sends it)"))
            }
            guard let route = request.uri.queryParameters["route"].map(String.init), !route.isEmpty else {
                return .error(SkyError(.badRequest, "name the route: POST /failed/redrive?route=NAME"))
            }
            do {
                let asked = try await self.watcher.redrive(route: route, actor: "sky dashboard")
                return .json(["route": .string(route), "asked": .int(Int64(asked))])
            } catch {
                return .error(SkyError(.registry, "cannot ask for the redrive: \(error)"))
            }
        }
    }

    /// Serves the page beside the admin endpoints; with a token, browsers log in with it as a
    /// Basic password.
    public func run() async throws {
        try await AdminServer(
            host: self.host, port: self.port, token: self.token, endpoints: self.admin, allowBasic: true, tls: self.tls, limits: self.limits,
            eventLoopGroup: self.eventLoopGroup, routes: { router, table in self.addRoutes(to: router, recording: table) }, logger: self.logger, onServerRunning: self.onServerRunning
        ).run()
    }
}
