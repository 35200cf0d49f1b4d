import Testing

@testable import Initiators
import SkyLib

/// The STOMP connection's writer takes every frame ready in one go, in the order added, and
/// stops on finish or cancellation (the real broker's side: StompInitiatorTests, DrainTests).
struct StompOutboxTests {
    private func frame(_ id: String) -> StompFrame { StompFrame(command: "ACK", headers: [("id", id)]) }

    private func ids(_ frames: [StompFrame]?) -> [String]? { frames?.map { $0[header: "id"] ?? "" } }

    @Test func framesAddedWhileTheWriterIsBusyLeaveTogetherInOrder() async {
        let outbox = StompOutbox()
        outbox.send([self.frame("1")])
        outbox.send([self.frame("2"), self.frame("3")])
        outbox.send([])
        outbox.send([self.frame("4")])
        // One take, one write: the three sends' frames, in the order they were added.
        #expect(self.ids(await outbox.next()) == ["1", "2", "3", "4"])
        outbox.send([self.frame("5")])
        #expect(self.ids(await outbox.next()) == ["5"])
    }

    @Test func aWaitingWriterIsWokenByTheNextSend() async {
        let outbox = StompOutbox()
        let (started, start) = AsyncStream.makeStream(of: Void.self)
        let writer = Task {
            start.yield()
            return await outbox.next()
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        outbox.send([self.frame("a")])
        #expect(self.ids(await writer.value) == ["a"])
    }

    @Test func finishHandsOverWhatIsPendingThenEnds() async {
        let outbox = StompOutbox()
        outbox.send([self.frame("last")])
        outbox.finish()
        outbox.send([self.frame("after the end")])
        #expect(self.ids(await outbox.next()) == ["last"])
        #expect(await outbox.next() == nil)
    }

    @Test func finishWakesAWaitingWriter() async {
        let outbox = StompOutbox()
        let writer = Task { await outbox.next() }
        // Whether the writer waits already or not yet, it ends with nothing.
        outbox.finish()
        #expect(await writer.value == nil)
    }

    @Test func aCancelledWriterStopsWaiting() async {
        let outbox = StompOutbox()
        let writer = Task { await outbox.next() }
        writer.cancel()
        #expect(await writer.value == nil)
    }
}
