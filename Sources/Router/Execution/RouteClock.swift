public import NIOCore
import SkyLib

/// Where a route run reads the time, waits out its back-offs and draws their jitter: the
/// system's clock, or a virtual one for route tests (`sky route test`), on which a 30 s timeout
/// passes at once and every run of a case comes out the same.
///
/// A virtual clock moves only when told: a scripted service's delay or hang, or a back-off,
/// moves it on to the time that wait would end. Steps run one after another read it exactly;
/// branches of a `parallel` step share it, so its reading is the latest time any branch
/// reached (a branch's waits are not counted twice, but one branch's wait can end another's
/// early).
public final class RouteClock: Sendable {
    /// The system's monotonic clock: real sleeps, random jitter.
    public static let system = RouteClock(virtualStart: nil)

    /// A virtual clock's time; `nil` for the system's.
    private let virtualNow: Locked<NIODeadline>?

    private init(virtualStart: NIODeadline?) {
        self.virtualNow = virtualStart.map { Locked($0) }
    }

    /// A virtual clock, starting at `start`.
    public static func virtual(startingAt start: NIODeadline = .now()) -> RouteClock {
        RouteClock(virtualStart: start)
    }

    /// Whether this clock is virtual.
    public var isVirtual: Bool { self.virtualNow != nil }

    /// The time now.
    public func now() -> NIODeadline {
        guard let virtualNow else { return .now() }
        return virtualNow.withLock { $0 }
    }

    /// Waits `duration`: a real sleep, or, on a virtual clock, time moved on at once.
    /// - Throws: `CancellationError` when the task is cancelled while waiting.
    public func sleep(for duration: Duration) async throws {
        guard self.virtualNow != nil else {
            try await Task.sleep(for: duration)
            return
        }
        try Task.checkCancellation()
        self.advance(to: self.now() + TimeAmount(duration))
        await Task.yield()
    }

    /// Moves a virtual clock on to `deadline` (never back); the system's clock is not moved.
    public func advance(to deadline: NIODeadline) {
        self.virtualNow?.withLock { now in now = max(now, deadline) }
    }

    /// The jitter of a back-off, 0…1: random on the system's clock; 1, the longest wait, on a
    /// virtual one, so a test's outcome never depends on a draw and covers the worst case.
    public func jitter() -> Double {
        self.isVirtual ? 1 : Double.random(in: 0...1)
    }
}
