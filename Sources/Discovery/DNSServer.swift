public import Logging
public import NIOCore
import NIOPosix
public import RegistryKit
public import ServiceLifecycle
public import SkyLib

/// `sky dns`: answers DNS over UDP and TCP for the registry's nodes (``DNSResponder``), from
/// a ``RegistryCache`` so a query never waits on the registry.
///
/// Malformed packets are dropped without an answer and counted (`dns-malformed`); a query
/// over UDP gets at most 512 bytes, or the EDNS0 size it offers (up to 4096), and the
/// truncated flag when answers had to be left out, so the resolver asks again over TCP,
/// which carries the whole answer. A TCP connection idle for 10 s is closed.
public final class DNSServer: Service, Sendable {
    /// Where it listens and what it answers for.
    public struct Configuration: Sendable {
        /// The interface, loopback unless told otherwise.
        public var host: String = "127.0.0.1"
        /// The port for both UDP and TCP; 0 picks a free one (the same for both).
        public var port: Int = 8053
        /// The zone.
        public var domain: DNSName = DNSName("skydns.local.")
        /// This server's region: its instances get the better SRV priority.
        public var region: String?
        /// Creates a `Configuration` with the defaults.
        public init() {}
    }

    /// How a listener reports where it listens.
    public typealias OnListening = @Sendable (_ host: String, _ port: Int) async -> Void

    private let configuration: Configuration
    private let cache: RegistryCache
    private let counters: Counters
    private let logger: Logger
    private let onListening: OnListening
    private let responder: DNSResponder
    /// Where the UDP and TCP listeners run.
    private let eventLoopGroup: any EventLoopGroup

    /// Creates a `DNSServer` answering from `cache`.
    /// - Parameter eventLoopGroup: where the listeners run (the node's loops).
    public init(
        configuration: Configuration, cache: RegistryCache, counters: Counters, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onListening: @escaping OnListening = { _, _ in }
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.configuration = configuration
        self.cache = cache
        self.counters = counters
        self.logger = logger
        self.onListening = onListening
        self.responder = DNSResponder(domain: configuration.domain, region: configuration.region)
    }

    /// Answers one query's bytes, or `nil` when nothing must be sent back.
    func answer(_ bytes: [UInt8], limit: Int?) -> [UInt8]? {
        let query: DNSMessage
        do {
            query = try DNSMessage(bytes: bytes)
        } catch {
            self.counters.add("dns-malformed")
            self.logger.debug("dropped a malformed DNS packet", metadata: ["error": "\(error)"])
            return nil
        }
        guard let response = self.responder.respond(to: query, nodes: self.cache.readyNodes()) else { return nil }
        self.counters.add(response.rcode == .noError ? "dns-answered" : "dns-rcode-\(response.rcode.rawValue)")
        let size = limit.map { limit in query.edns.map { max(limit, min(Int($0.udpPayloadSize), 4096)) } ?? limit }
        let bytes = response.bytes(limit: size)
        if size != nil, bytes.count > 11, bytes[2] & 0x02 != 0 { self.counters.add("dns-truncated") }
        return bytes
    }

    /// Binds UDP and TCP, then serves until graceful shutdown.
    public func run() async throws {
        let group = self.eventLoopGroup
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in channel.pipeline.addHandler(UDPHandler(server: self)) }
            .bind(host: self.configuration.host, port: self.configuration.port).get()
        let port = udp.localAddress?.port ?? self.configuration.port
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixDecoder()))
                        try channel.pipeline.syncOperations.addHandler(TCPHandler(server: self))
                    }
                }
                .bind(host: self.configuration.host, port: port).get()
        } catch {
            try? await udp.close()
            throw SkyError(.configuration, "sky dns cannot listen on TCP \(self.configuration.host):\(port): \(error)")
        }
        self.logger.notice("dns answering for \(self.configuration.domain) on \(self.configuration.host):\(port) (UDP and TCP)")
        await self.onListening(self.configuration.host, port)
        await withGracefulShutdownHandler {
            try? await udp.closeFuture.get()
        } onGracefulShutdown: {
            udp.close(promise: nil)
        }
        try? await tcp.close()
    }

    /// Answers each datagram to its sender.
    private final class UDPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let server: DNSServer
        init(server: DNSServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = Self.unwrapInboundIn(data)
            guard let answer = self.server.answer(Array(buffer: envelope.data), limit: 512) else { return }
            let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: context.channel.allocator.buffer(bytes: answer))
            context.writeAndFlush(Self.wrapOutboundOut(out), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A send to a peer that went away (ICMP unreachable) is no reason to stop serving.
            self.server.logger.debug("dns udp error", metadata: ["error": "\(error)"])
        }
    }

    /// Answers each length-prefixed query on a connection, whole; closes on a malformed one.
    private final class TCPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let server: DNSServer
        init(server: DNSServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let answer = self.server.answer(Array(buffer: Self.unwrapInboundIn(data)), limit: nil) else {
                context.close(promise: nil)
                return
            }
            var out = context.channel.allocator.buffer(capacity: answer.count + 2)
            out.writeInteger(UInt16(truncatingIfNeeded: min(answer.count, 65535)))
            out.writeBytes(answer.prefix(65535))
            context.writeAndFlush(Self.wrapOutboundOut(out), promise: nil)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// DNS over TCP: each message after its two-byte length (RFC 1035, 4.2.2).
    private struct LengthPrefixDecoder: NIOSingleStepByteToMessageDecoder {
        typealias InboundOut = ByteBuffer

        mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return buffer.readSlice(length: Int(length))
        }

        mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
            try self.decode(buffer: &buffer)
        }
    }
}
