public import Hummingbird
import SkyLib
public import TLS
public import Logging
public import NIOCore
public import ServiceLifecycle

/// The admin endpoints (`/health`, `/debug/vars`, `/metrics`) on their own address, for
/// processes that serve nothing else over HTTP (the reaper, a standalone initiator), or
/// beside a few pages of their own (the dashboard, through `routes`).
public struct AdminServer: Service {
    /// The interface to listen on.
    public var host: String
    /// The port to listen on; 0 picks a free one (reported to `onServerRunning`).
    public var port: Int
    /// The shared secret every endpoint but `/health` requires, when set.
    public var token: String?
    /// What is served.
    public let endpoints: AdminEndpoints
    /// Whether the token is also accepted as a Basic password (pages a browser opens).
    public var allowBasic: Bool
    /// The process's TLS; the server speaks HTTPS when it serves a certificate.
    public var tls: NodeTLS?
    /// What a connection is allowed (idle and request timeouts, the connection cap).
    public var limits: HTTPLimits
    /// The event loops the listener runs on (the node's).
    public let eventLoopGroup: any EventLoopGroup
    private let routes: @Sendable (Router<BasicRequestContext>, EndpointTable) -> Void
    private let logger: Logger
    private let onServerRunning: @Sendable (String) async -> Void

    /// - Parameter onServerRunning: called with `HOST:PORT` once the server listens.
    public init(
        host: String,
        port: Int,
        token: String?,
        endpoints: AdminEndpoints,
        allowBasic: Bool = false,
        tls: NodeTLS? = nil,
        limits: HTTPLimits = HTTPLimits(),
        eventLoopGroup: any EventLoopGroup,
        routes: @escaping @Sendable (Router<BasicRequestContext>, EndpointTable) -> Void = { _, _ in },
        logger: Logger,
        onServerRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.allowBasic = allowBasic
        self.tls = tls
        self.limits = limits
        self.eventLoopGroup = eventLoopGroup
        self.routes = routes
        self.host = host
        self.port = port
        self.token = token
        self.endpoints = endpoints
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        let table = EndpointTable()
        if let token = self.token { router.add(middleware: TokenMiddleware(token: token, allowBasic: self.allowBasic)) }
        router.add(middleware: MethodNotAllowedMiddleware(table: table))
        self.routes(router, table)
        self.endpoints.add(to: router, recording: table)
        let host = self.host
        let onServerRunning = self.onServerRunning
        let tls = self.tls?.serves ?? false
        let app = Application(
            router: router,
            server: self.limits.server(tls: self.tls),
            configuration: self.limits.configuration(host: host, port: self.port),
            onServerRunning: { channel in await onServerRunning(AdvertisedAddress.forListener(host: host, port: channel.localAddress?.port ?? 0, tls: tls)) },
            eventLoopGroupProvider: .shared(self.eventLoopGroup),
            logger: self.logger
        )
        try await Listener.run(app, host: host, port: self.port)
    }
}
