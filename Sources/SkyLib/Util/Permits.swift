/// A counting semaphore for tasks: at most `limit` holders at once; `acquire` waits (without
/// blocking a thread) for a permit. Used to bound work in flight where a task group's
/// `next()` cannot be used.
///
/// Waiting does not end on cancellation: every holder must `release`.
public final class Permits: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    private let state: Locked<State>

    /// Creates a `Permits` from its parts.
    public init(_ limit: Int) {
        self.state = Locked(State(available: max(1, limit)))
    }

    /// Takes a permit, waiting for one to be released when none is free.
    public func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = self.state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Gives a permit back, handing it straight to the longest waiter if there is one.
    public func release() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.head < state.waiters.count {
                let waiter = state.waiters[state.head]
                state.head += 1
                if state.head == state.waiters.count {
                    state.waiters.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return waiter
            }
            state.available += 1
            return nil
        }
        waiter?.resume()
    }

    /// Permits free now.
    public var available: Int { self.state.withLock { $0.available } }
}
