import Foundation
import Testing

@testable import Initiators
import SkyLib

/// A drain waits for what is in hand, ACKs included: the DISCONNECT it then writes must follow
/// the ACK of the last answer on the wire, or the broker drops the ACK and the message, answered
/// already, comes back after a restart to be answered twice.
struct StompInHandTests {
    @Test func aDrainEndsOnlyAfterTheLastAckWasHandedToTheWriter() async throws {
        let inHand = StompInHand()
        inHand.started()
        let send = inHand.awaitReceipt(for: [StompFrame(command: "SEND")], then: [StompFrame(command: "ACK", headers: [("id", "m-1")])], message: "m-1")
        let receipt = try #require(send.last?[header: "receipt"])
        inHand.ended()
        #expect(inHand.count == 1)
        let written = Locked<[String]>([])
        let drain = Task {
            await inHand.waitUntilEmpty()
            written.withLock { $0.append("DISCONNECT") }
        }
        // The writer is slow to take the ACK: the drain must still wait for it.
        let message = inHand.received(receipt) { frames in
            Thread.sleep(forTimeInterval: 0.2)
            written.withLock { $0 += frames.map(\.command) }
        }
        await drain.value
        #expect(message == "m-1")
        #expect(written.withLock { $0 } == ["ACK", "DISCONNECT"])
        #expect(inHand.received(receipt) { _ in Issue.record("a receipt is taken once") } == nil)
    }
}
