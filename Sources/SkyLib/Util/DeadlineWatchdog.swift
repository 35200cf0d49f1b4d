import HeapModule
public import NIOCore
import Synchronization

/// One process-wide timer for every deadline in flight.
///
/// `Task.sleep` arms a Dispatch timer per call, and a cancelled sleep still fires later: with
/// a deadline race per request that was most of the router's cost under load (see
/// BENCHMARKS.md). The watchdog keeps waiters in a heap under a lock and arms a single timer
/// on one event loop for the earliest of them. Deadlines mostly arrive in increasing order
/// (the same timeout from "now"), so a new waiter rarely re-arms the timer, and a waiter that
/// finishes first is only forgotten (its heap entry is dropped when it surfaces, or in a
/// compaction when dead entries pile up).
public final class DeadlineWatchdog: Sendable {
    private struct Entry: Comparable {
        var deadline: NIODeadline
        var id: UInt64
        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.id) < (rhs.deadline, rhs.id)
        }
    }

    private struct State {
        var heap = Heap<Entry>()
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelledEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
        /// The armed timer and the deadline it fires at.
        var armed: (deadline: NIODeadline, task: Scheduled<Void>)?
    }

    private let eventLoop: any EventLoop
    private let state = Mutex(State())

    /// - Parameter eventLoop: where the one timer is armed. The node runtime makes one watchdog
    ///   per process on one of its event loops (`NodeContext`) and hands it to the router and
    ///   the service hosts it assembles.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Waiters registered now (for tests and `/debug/vars`).
    public var count: Int { self.state.withLock { $0.waiters.count } }

    /// Suspends until `deadline` passes.
    /// - Throws: `CancellationError` when the task is cancelled first.
    public func sleep(until deadline: NIODeadline) async throws {
        let id = self.state.withLock { state in
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                self.register(id: id, deadline: deadline, continuation: continuation)
            }
        } onCancel: {
            let continuation = self.state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let continuation = state.waiters.removeValue(forKey: id) else {
                    state.cancelledEarly.insert(id)
                    return nil
                }
                return continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    private func register(id: UInt64, deadline: NIODeadline, continuation: CheckedContinuation<Void, any Error>) {
        enum Outcome { case waiting, cancelled, due }
        let outcome = self.state.withLock { state -> Outcome in
            if state.cancelledEarly.remove(id) != nil { return .cancelled }
            if deadline <= .now() { return .due }
            state.waiters[id] = continuation
            state.heap.insert(Entry(deadline: deadline, id: id))
            // Dead entries (waiters that finished first) are dropped lazily; rebuild the heap
            // when they outnumber the live ones so it stays bounded by the waiters in flight.
            if state.heap.count > 1024, state.heap.count > 2 * state.waiters.count {
                state.heap = Heap(state.heap.unordered.filter { state.waiters[$0.id] != nil })
            }
            self.armIfNeeded(&state)
            return .waiting
        }
        switch outcome {
        case .waiting: break
        case .cancelled: continuation.resume(throwing: CancellationError())
        case .due: continuation.resume()
        }
    }

    /// Arms the timer for the earliest entry unless it is armed for that time or sooner.
    private func armIfNeeded(_ state: inout State) {
        guard let earliest = state.heap.min?.deadline else { return }
        if let armed = state.armed, armed.deadline <= earliest { return }
        state.armed?.task.cancel()
        let task = self.eventLoop.scheduleTask(deadline: earliest) { self.fire() }
        state.armed = (earliest, task)
    }

    /// Resumes every waiter whose deadline passed and arms the timer for the next one.
    private func fire() {
        let due = self.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            let now = NIODeadline.now()
            // A timer replaced while it was already running must not forget its successor.
            if let armed = state.armed, armed.deadline <= now { state.armed = nil }
            var due: [CheckedContinuation<Void, any Error>] = []
            while let first = state.heap.min, first.deadline <= now {
                state.heap.removeMin()
                if let continuation = state.waiters.removeValue(forKey: first.id) { due.append(continuation) }
            }
            // Skip entries whose waiters already left, so the timer is armed for a live one.
            while let first = state.heap.min, state.waiters[first.id] == nil { state.heap.removeMin() }
            self.armIfNeeded(&state)
            return due
        }
        for continuation in due { continuation.resume() }
    }
}
