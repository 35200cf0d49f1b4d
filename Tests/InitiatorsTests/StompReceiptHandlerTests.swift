import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import Initiators
import SkyLib

/// The RECEIPT of an answer releases its ACK on the event loop, flushed once per read; other
/// RECEIPTs go on to the reader (the real broker's side: StompTests, DrainTests).
struct StompReceiptHandlerTests {
    @Test func aReceiptForAnAnswerWritesItsAckAndOnlyOthersReachTheReader() throws {
        let inHand = StompInHand()
        let channel = EmbeddedChannel(handler: StompReceiptHandler(inHand: inHand, logger: Logger(label: "test")))
        let ack = StompFrame(command: "ACK", headers: [("id", "m-1")])
        let send = inHand.awaitReceipt(for: [StompFrame(command: "SEND")], then: [ack], message: "m-1")
        let receipt = try #require(send.last?[header: "receipt"])
        #expect(inHand.unconfirmed == 1)

        try channel.writeInbound(StompFrame(command: "RECEIPT", headers: [("receipt-id", receipt)]))
        // Taken here, not passed on; the ACK written and, at the end of the read, flushed.
        #expect(try channel.readInbound(as: StompFrame.self) == nil)
        #expect(try channel.readOutbound(as: StompFrame.self) == ack)
        #expect(inHand.unconfirmed == 0)

        // The DISCONNECT's receipt, and one we never asked for: the reader's.
        for id in [StompInitiator.disconnectReceipt, receipt, "stray"] {
            try channel.writeInbound(StompFrame(command: "RECEIPT", headers: [("receipt-id", id)]))
            #expect(try channel.readInbound(as: StompFrame.self)?[header: "receipt-id"] == id)
        }
        let message = StompFrame(command: "MESSAGE", headers: [("ack", "m-2")])
        try channel.writeInbound(message)
        #expect(try channel.readInbound(as: StompFrame.self) == message)
        #expect(try channel.readOutbound(as: StompFrame.self) == nil)
        _ = try channel.finish()
    }

    @Test func theAcksOfOneReadLeaveWithOneFlush() throws {
        let inHand = StompInHand()
        let channel = EmbeddedChannel(handler: StompReceiptHandler(inHand: inHand, logger: Logger(label: "test")))
        let receipts = try (1...3).map { index in
            try #require(inHand.awaitReceipt(for: [StompFrame(command: "SEND")], then: [StompFrame(command: "ACK", headers: [("id", "m-\(index)")])], message: "m-\(index)").last?[header: "receipt"])
        }
        // Three RECEIPTs in one read: written as they come, flushed when the read completes.
        for receipt in receipts {
            channel.pipeline.fireChannelRead(StompFrame(command: "RECEIPT", headers: [("receipt-id", receipt)]))
        }
        #expect(try channel.readOutbound(as: StompFrame.self) == nil)
        channel.pipeline.fireChannelReadComplete()
        #expect(try (1...3).map { _ in try channel.readOutbound(as: StompFrame.self)?[header: "id"] } == ["m-1", "m-2", "m-3"])
        _ = try channel.finish()
    }
}
