/// A one-shot signal: tasks wait until someone opens it; once open it stays open.
///
/// A waiting task that is cancelled stops waiting (``wait()`` then answers `false`), so a task
/// group can race a latch against other work and cancel the loser.
public final class Latch: Sendable {
    private struct State {
        var open = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = Locked(State())

    /// Creates a `Latch` with the defaults.
    public init() {}

    /// Whether the latch has been opened.
    public var isOpen: Bool { self.state.withLock { $0.open } }

    /// Waits until the latch is opened (returns at once when it already is) or the task is
    /// cancelled.
    /// - Returns: whether the latch is open (`false`: cancelled first).
    @discardableResult
    public func wait() async -> Bool {
        let id = self.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer = self.state.withLock { state -> Bool? in
                    if state.open { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            // Runs once, before or after the waiter is stored: stored, it is resumed here;
            // not yet stored, the check inside the lock above sees the cancellation.
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }

    /// Opens the latch and releases every waiter.
    public func open() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }
}
