import Synchronization

/// A `Mutex` that can be shared by reference, for state that closures built before `self`
/// exists must also reach.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    /// Creates a `Locked` from its parts.
    public init(_ value: Value) {
        self.mutex = Mutex(value)
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout sending Value) throws -> sending Result) rethrows -> sending Result {
        try self.mutex.withLock(body)
    }
}
