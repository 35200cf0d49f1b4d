/// A one-shot signal: tasks wait until someone opens it; once open it stays open.
///
/// Waiting does not end on cancellation (a continuation is not cancellable): open the latch
/// to release waiters.
public final class Latch: Sendable {
    private let state = Locked<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Creates a `Latch` with the defaults.
    public init() {}

    /// Whether the latch has been opened.
    public var isOpen: Bool { self.state.withLock { $0.open } }

    /// Waits until the latch is opened (returns at once when it already is).
    public func wait() async {
        await withCheckedContinuation { continuation in
            let open = self.state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    /// Opens the latch and releases every waiter.
    public func open() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
