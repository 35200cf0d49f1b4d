import SkyLib
import RouteModel

/// What one STOMP connection holds: messages being handled, and answers sent and waiting for
/// the broker's RECEIPT (their ACK or NACK goes out only once it comes). A drain waits until
/// it is empty; each message that ends and each RECEIPT wakes the waiter to look again.
final class StompInHand: Sendable {
    private struct State {
        var handling = 0
        /// Acks waiting for the RECEIPT of the answer they follow, by receipt id, with the
        /// message they answer (named in the debug log, to trace a message).
        var awaiting: [String: (then: [StompFrame], message: String)] = [:]
        var receipts = 0
    }

    private let state = Locked(State())
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation

    init() {
        (self.changes, self.changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Messages being handled plus answers waiting for their RECEIPT.
    var count: Int { self.state.withLock { $0.handling + $0.awaiting.count } }

    /// Answers sent and not yet confirmed.
    var unconfirmed: Int { self.state.withLock { $0.awaiting.count } }

    /// A message is being handled.
    func started() {
        self.state.withLock { $0.handling += 1 }
    }

    /// A message's handling ended (its answer, if any, is now awaiting a RECEIPT).
    func ended() {
        self.state.withLock { $0.handling -= 1 }
        self.changed.yield()
    }

    /// Asks a RECEIPT for `send`'s last frame and keeps `then` until it comes.
    /// - Returns: `send`, its last frame carrying the receipt header.
    func awaitReceipt(for send: [StompFrame], then: [StompFrame], message: String) -> [StompFrame] {
        let receipt = self.state.withLock { state in
            state.receipts += 1
            let id = "sky-\(state.receipts)"
            state.awaiting[id] = (then, message)
            return id
        }
        var send = send
        send[send.count - 1].headers.append(("receipt", receipt))
        return send
    }

    /// The broker's RECEIPT `id`: hands what follows it (the ACK) to `send`, and only then stops
    /// counting the answer as in hand. Returns the message it answered; `nil` for a receipt we
    /// did not ask for.
    ///
    /// The order matters: a drain that saw nothing in hand before the ACK was written would
    /// write its DISCONNECT first, the broker would drop the late ACK, and the message, answered
    /// already, would come back after the restart and be answered twice (what DrainTests saw in
    /// a CI run of ac6fc5b).
    func received(_ id: String, send: ([StompFrame]) -> Void) -> String? {
        // Only the connection's receipt handler calls this, on its event loop: nothing removes
        // `id` between the two locks.
        guard let waiting = self.state.withLock({ $0.awaiting[id] }) else { return nil }
        send(waiting.then)
        self.state.withLock { _ = $0.awaiting.removeValue(forKey: id) }
        self.changed.yield()
        return waiting.message
    }

    /// Waits until nothing is in hand (or the connection ends: ``finish()``).
    func waitUntilEmpty() async {
        var iterator = self.changes.makeAsyncIterator()
        while self.count > 0, await iterator.next() != nil {}
    }

    /// The connection is over: waiters stop waiting.
    func finish() {
        self.changed.finish()
    }
}
