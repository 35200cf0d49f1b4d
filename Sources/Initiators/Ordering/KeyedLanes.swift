import SkyLib

/// Ordered lanes per key (`order: { key: FIELD }` on a source): inputs with the same key run one
/// at a time, in the order they arrived; inputs with different keys run side by side.
///
/// An input takes a ticket when it arrives (``reserve(_:)``, called in arrival order by the one
/// loop that reads the source), waits for its turn (``wait(for:)``), runs, and leaves
/// (``leave(_:)``), which lets the next ticket of its key go. A lane exists only while an input
/// of its key holds a ticket: memory is one entry per key in flight, and the inputs in flight are
/// bounded by the source already (its concurrency, or a STOMP source's prefetch), so a slow key
/// fills at most that many places and then the source stops taking input.
final class KeyedLanes: Sendable {
    /// A place in a lane.
    struct Ticket: Sendable, Hashable {
        /// The lane's key.
        var key: String
        /// The place, counted from the lane's first ticket.
        var number: Int
    }

    private struct Lane {
        /// The next ticket's number.
        var next = 0
        /// The ticket whose turn it is.
        var serving = 0
        /// Tickets waiting for their turn.
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Tickets that left before their turn (cancelled at a stop): skipped when it comes.
        var abandoned: Set<Int> = []
    }

    private let lanes = Locked<[String: Lane]>([:])

    /// Creates empty lanes.
    init() {}

    /// Keys with an input in flight.
    var count: Int { self.lanes.withLock { $0.count } }

    /// Takes the next place in `key`'s lane (call in arrival order).
    func reserve(_ key: String) -> Ticket {
        self.lanes.withLock { lanes in
            let number = lanes[key, default: Lane()].next
            lanes[key, default: Lane()].next += 1
            return Ticket(key: key, number: number)
        }
    }

    /// Waits until it is `ticket`'s turn: every earlier ticket of its key has left. Cancellation
    /// (a stop past the drain limit) ends the wait early; the caller then leaves without running.
    func wait(for ticket: Ticket) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.lanes.withLock { lanes -> Bool in
                    guard lanes[ticket.key]?.serving != ticket.number, !Task.isCancelled else { return true }
                    lanes[ticket.key]?.waiting[ticket.number] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.lanes.withLock { $0[ticket.key]?.waiting.removeValue(forKey: ticket.number) }?.resume()
        }
    }

    /// Whether it is `ticket`'s turn (its wait is over, not cut short).
    func isTurn(of ticket: Ticket) -> Bool {
        self.lanes.withLock { $0[ticket.key]?.serving == ticket.number }
    }

    /// `ticket`'s input is done (or will not run): the next ticket of its key goes; an empty lane
    /// is forgotten.
    func leave(_ ticket: Ticket) {
        let next = self.lanes.withLock { lanes -> CheckedContinuation<Void, Never>? in
            guard var lane = lanes[ticket.key] else { return nil }
            guard lane.serving == ticket.number else {
                // Left before its turn: its place is skipped when the turn comes.
                lane.abandoned.insert(ticket.number)
                lanes[ticket.key] = lane
                return nil
            }
            lane.serving += 1
            while lane.abandoned.remove(lane.serving) != nil { lane.serving += 1 }
            if lane.serving == lane.next {
                lanes.removeValue(forKey: ticket.key)
                return nil
            }
            let next = lane.waiting.removeValue(forKey: lane.serving)
            lanes[ticket.key] = lane
            return next
        }
        next?.resume()
    }
}
