public import NIOCore

/// Thrown by ``withDeadline(_:operation:)`` when the deadline passes first.
public struct DeadlineExceeded: Error, Sendable {
    public init() {}
}

/// Runs `operation`, cancelling it and throwing ``DeadlineExceeded`` if `deadline` passes first.
/// With no deadline it simply runs `operation`.
public func withDeadline<T: Sendable>(
    _ deadline: NIODeadline?,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let deadline else { return try await operation() }
    let remaining = deadline - .now()
    guard remaining > .zero else { throw DeadlineExceeded() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .nanoseconds(remaining.nanoseconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
        return value
    }
}

extension RequestEnvelope {
    /// The envelope's deadline as a monotonic `NIODeadline`, also bounded by `timeoutMilliseconds`
    /// (the `Skynet-Timeout-Ms` header), whichever is sooner; `nil` when neither is set.
    public func monotonicDeadline(timeoutMilliseconds: Int64? = nil) -> NIODeadline? {
        let candidates = [self.remainingMilliseconds, timeoutMilliseconds].compactMap { $0 }
        guard let remaining = candidates.min() else { return nil }
        return .now() + .milliseconds(remaining)
    }
}
