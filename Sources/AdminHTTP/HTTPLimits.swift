public import Hummingbird
public import HummingbirdCore
import NIOCore
import NIOHTTP1
public import TLS

/// What every HTTP listener of a Skynet process (HTTP initiator, service `/call`, admin
/// endpoints, dashboard) allows a connection, so idle, slow or numerous connections cannot
/// exhaust the process (docs/SECURITY.md lists them):
///
/// | Limit | Default | Environment |
/// |---|---|---|
/// | idle keep-alive connection closed after | 75 s | `SKYNET_HTTP_IDLE_TIMEOUT` (seconds) |
/// | a request's head and body must arrive within | 30 s of its first byte | `SKYNET_HTTP_REQUEST_TIMEOUT` |
/// | open connections per listener | 4096 (further ones wait in the kernel's backlog) | `SKYNET_HTTP_MAX_CONNECTIONS` |
///
/// The idle timeout is longer than the 60 s a router's pool keeps an idle connection, so a
/// server never closes a connection its client is about to reuse. HTTP/1.0 requests without
/// `Connection: keep-alive` (and HTTP/1.1 ones with `Connection: close`) are answered and the
/// connection closed.
public struct HTTPLimits: Sendable, Equatable {
    /// A keep-alive connection with no request for this long is closed (`SKYNET_HTTP_IDLE_TIMEOUT`).
    public var idleTimeout: Duration = .seconds(75)
    /// A request whose head and body have not all arrived this long after its first byte is closed (`SKYNET_HTTP_REQUEST_TIMEOUT`).
    public var requestTimeout: Duration = .seconds(30)
    /// Connections held at once; more wait in the listen backlog (`SKYNET_HTTP_MAX_CONNECTIONS`).
    public var maxConnections: Int = 4096

    /// Creates a `HTTPLimits` with the defaults.
    public init() {}

    /// The defaults, overridden by `SKYNET_HTTP_*` variables; a value that is not a positive
    /// number is ignored (with the default kept), never fatal for a listener.
    public init(environment: [String: String]) {
        func seconds(_ key: String) -> Duration? {
            guard let text = environment[key], let value = Double(text), value > 0 else { return nil }
            return .milliseconds(Int64(value * 1000))
        }
        if let idle = seconds("SKYNET_HTTP_IDLE_TIMEOUT") { self.idleTimeout = idle }
        if let request = seconds("SKYNET_HTTP_REQUEST_TIMEOUT") { self.requestTimeout = request }
        if let text = environment["SKYNET_HTTP_MAX_CONNECTIONS"], let value = Int(text), value > 0 { self.maxConnections = value }
    }


    /// The server to build applications with: HTTP/1.1 with these limits, in TLS when `tls`
    /// serves a certificate.
    public func server(tls: NodeTLS? = nil) -> HTTPServerBuilder {
        let requestTimeout = TimeAmount(self.requestTimeout)
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuardInstaller(requestTimeout: requestTimeout)],
            idleTimeout: TimeAmount(self.idleTimeout)
        )
        guard let tls, tls.serves else { return .http1(configuration: configuration) }
        return HTTPServerBuilder { responder in
            TLSListenerChannel(HTTP1Channel(responder: responder, configuration: configuration), tls: tls)
        }
    }

    /// The application configuration for a listener on `host:port`, with the connection cap.
    public func configuration(host: String, port: Int) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: nil,
            availableConnectionsDelegate: MaximumAvailableConnections(self.maxConnections)
        )
    }
}

/// When the current request began arriving, shared by the two guards of one connection
/// (used on its event loop only).
///
/// One timer per connection, not one per request: a keep-alive connection under load starts
/// and ends thousands of requests a second, and scheduling and cancelling a task for each
/// showed in the HTTP route's profile. The timer is armed when a request starts and none is
/// pending; when it fires it closes the connection if the request that is arriving began a
/// whole timeout ago, re-arms for that request's own deadline if a later one is arriving, and
/// lapses when nothing is.
final class RequestClock {
    private var timer: Scheduled<Void>?
    /// When the request now arriving began; `nil` between requests.
    private(set) var receivingSince: NIODeadline?
    let timeout: TimeAmount

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    var receiving: Bool { self.receivingSince != nil }

    /// A request's first byte arrived.
    func start(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        self.receivingSince = now
        if self.timer == nil { self.arm(at: now + self.timeout, channel: context.channel, eventLoop: context.eventLoop) }
    }

    /// The request fully arrived (the timer, if armed, lapses when it fires).
    func stop() {
        self.receivingSince = nil
    }

    /// The connection closed.
    func cancel() {
        self.receivingSince = nil
        self.timer?.cancel()
        self.timer = nil
    }

    private func arm(at deadline: NIODeadline, channel: any Channel, eventLoop: any EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        self.timer = eventLoop.scheduleTask(deadline: deadline) {
            let clock = bound.value
            clock.timer = nil
            guard let since = clock.receivingSince else { return }
            let due = since + clock.timeout
            if due <= .now() {
                channel.close(promise: nil)
            } else {
                clock.arm(at: due, channel: channel, eventLoop: eventLoop)
            }
        }
    }
}

/// Added after Hummingbird's codec; puts the two guards where they can see what they need and
/// leaves: raw bytes (the first handler) and NIO's decoded parts, which still carry the HTTP
/// version (right after NIO's request decoder).
final class ConnectionGuardInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    let requestTimeout: TimeAmount

    init(requestTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let clock = RequestClock(timeout: self.requestTimeout)
        let operations = context.pipeline.syncOperations
        do {
            try operations.addHandler(RequestDeadlineHandler(clock: clock), position: .first)
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(RequestEndHandler(clock: clock), position: .after(decoder))
        } catch {
            // The pipeline is not the one Hummingbird builds: serve without the guards
            // rather than refuse every connection.
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Closes a connection whose request (head and body) has not fully arrived within the
/// timeout of its first byte: slow senders (slowloris) cannot hold a connection open.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let clock: RequestClock

    init(clock: RequestClock) {
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !self.clock.receiving { self.clock.start(context: context) }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.clock.cancel()
        context.fireChannelInactive()
    }
}

/// Sees NIO's decoded request parts: a request fully received stops the deadline; a request
/// that does not keep the connection alive (HTTP/1.0 without `keep-alive`, or
/// `Connection: close`) gets `Connection: close` on its answer and the connection is closed
/// once the answer is written.
final class RequestEndHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    let clock: RequestClock
    var closeAfterResponse = false

    init(clock: RequestClock) {
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            if !head.isKeepAlive { self.closeAfterResponse = true }
        case .body:
            break
        case .end:
            self.clock.stop()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard self.closeAfterResponse else {
            context.write(data, promise: promise)
            return
        }
        switch self.unwrapOutboundIn(data) {
        case .head(var head):
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(self.wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            let channel = context.channel
            let written = promise ?? context.eventLoop.makePromise()
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            context.writeAndFlush(data, promise: written)
        }
    }
}
