public import HummingbirdCore
public import Logging
public import NIOCore
import NIOSSL
import NIOTLS
public import TLS

/// A listener's connection in TLS: the process's current server context (so a reloaded
/// certificate serves the next connection), then the HTTP channel it wraps.
///
/// Hummingbird's own `TLSChannel` takes one fixed configuration; this one asks ``NodeTLS``
/// for each connection, which is what reloading certificates without a restart needs.
public struct TLSListenerChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// What the wrapped channel hands its handler.
    public typealias Value = Base.Value
    let base: Base
    let tls: NodeTLS

    /// Wraps `base` in the TLS of `tls`.
    public init(_ base: Base, tls: NodeTLS) {
        self.base = base
        self.tls = tls
    }

    /// Adds TLS (and, under `--allow-callers`, the caller check) before the wrapped channel's handlers.
    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let context = self.tls.serverContext else { return self.base.setup(channel: channel, logger: logger) }
        let tls = self.tls
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            if !tls.files.allowedCallers.isEmpty { try channel.pipeline.syncOperations.addHandler(CallerGate(tls: tls, logger: logger)) }
        }.flatMap {
            self.base.setup(channel: channel, logger: logger)
        }
    }

    /// Serves the connection as the wrapped channel does.
    public func handle(value: Value, logger: Logger) async {
        await self.base.handle(value: value, logger: logger)
    }
}

/// Under `--allow-callers`, closes a connection whose client certificate (verified against
/// `--tls-client-ca` in the handshake) goes by none of the allowed names: checked when the
/// handshake completes, before any request is read, and logged with the names it had.
final class CallerGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    let tls: NodeTLS
    let logger: Logger

    init(tls: NodeTLS, logger: Logger) {
        self.tls = tls
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
        let names = certificate.map(NodeTLS.names(of:)) ?? []
        guard self.tls.allows(names) else {
            self.logger.warning(
                "caller refused: its certificate is not in --allow-callers",
                metadata: ["names": "\(names.joined(separator: ","))", "allowed": "\(self.tls.files.allowedCallers.joined(separator: ","))", "peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")"]
            )
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
