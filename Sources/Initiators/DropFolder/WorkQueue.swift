import SkyLib
import RouteModel

/// Names waiting to be taken from a folder, each at most once, handed to a fixed number of
/// workers. Finishing the queue wakes every waiting worker with `nil`, and hands out nothing
/// more, even what still waits.
final class WorkQueue<Item: Hashable & Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var head = 0
        var queued: Set<Item> = []
        var waiters: [CheckedContinuation<Item?, Never>] = []
        var finished = false
    }

    private let state = Locked(State())

    /// Adds `item` unless it is already waiting or being worked on.
    func enqueue(_ item: Item) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Item?, Never>? in
            guard !state.finished, state.queued.insert(item).inserted else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    /// The next item, or `nil` once the queue is finished.
    func next() async -> Item? {
        await withCheckedContinuation { continuation in
            let item = self.state.withLock { state -> Item?? in
                // Finished: what still waits is not handed out (a stop takes no new input; the
                // files stay where they are for the next start).
                if state.finished { return .some(nil) }
                if state.head < state.items.count {
                    let item = state.items[state.head]
                    state.head += 1
                    if state.head > 1024, state.head * 2 > state.items.count {
                        state.items.removeFirst(state.head)
                        state.head = 0
                    }
                    return .some(item)
                }
                state.waiters.append(continuation)
                return nil
            }
            if let item { continuation.resume(returning: item) }
        }
    }

    /// Whether `item` is waiting or being worked on (queuing it again would do nothing).
    func isQueued(_ item: Item) -> Bool {
        self.state.withLock { $0.queued.contains(item) }
    }

    /// Marks `item` as handled, so it may be queued again later.
    func done(_ item: Item) {
        _ = self.state.withLock { $0.queued.remove(item) }
    }

    /// Items waiting, not yet handed out.
    var waiting: Int { self.state.withLock { $0.items.count - $0.head } }

    /// Stops handing out items, those still waiting included; waiting workers get `nil`.
    func finish() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Item?, Never>] in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
