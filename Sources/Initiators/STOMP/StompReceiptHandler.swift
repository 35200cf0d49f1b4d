import Logging
import NIOCore

/// Answers the broker's RECEIPTs on the connection's event loop: the ACK (or NACK) that an
/// answer's RECEIPT releases (``StompInHand/received(_:send:)``) is written there and then.
///
/// Why here and not in the reader task: handed from the event loop to the reader and from it to
/// the writer task and back to the event loop, each RECEIPT cost three thread hops, and the
/// STOMP benchmark's profile put most of the engine's time per message in that traffic. The ACKs
/// of the RECEIPTs of one read go out with one flush.
///
/// Order still holds: an ACK follows the answer it waited for (the broker confirmed that
/// answer), and a drain's DISCONNECT, written only once nothing is in hand, follows the last
/// ACK. A RECEIPT for nothing in hand (the DISCONNECT's, or one we never asked for) goes on to
/// the reader.
final class StompReceiptHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = StompFrame
    typealias InboundOut = StompFrame
    typealias OutboundOut = StompFrame

    private let inHand: StompInHand
    private let logger: Logger
    private var unflushed = false

    init(inHand: StompInHand, logger: Logger) {
        self.inHand = inHand
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard frame.command == "RECEIPT", let id = frame[header: "receipt-id"],
            let message = self.inHand.received(id, send: { frames in
                for then in frames { context.write(self.wrapOutboundOut(then), promise: nil) }
                self.unflushed = self.unflushed || !frames.isEmpty
            })
        else {
            context.fireChannelRead(data)
            return
        }
        self.logger.debug("the broker has the answer; acked the message", metadata: ["message": "\(message)", "receipt": "\(id)"])
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.unflushed {
            self.unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}
