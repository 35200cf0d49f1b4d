public import NIOCore

/// Thrown by ``withDeadline(_:watchdog:operation:)`` when the deadline passes first.
public struct DeadlineExceeded: Error, Sendable {
    /// Creates a `DeadlineExceeded` with the defaults.
    public init() {}
}

/// Runs `operation`, cancelling it and throwing ``DeadlineExceeded`` if `deadline` passes first.
/// With no deadline it simply runs `operation`. The timer is `watchdog`'s one timer, not a
/// `Task.sleep` per call.
public func withDeadline<T: Sendable>(
    _ deadline: NIODeadline?,
    watchdog: DeadlineWatchdog,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let deadline else { return try await operation() }
    guard deadline > .now() else { throw DeadlineExceeded() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await watchdog.sleep(until: deadline)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
        return value
    }
}
