import SkyLib

/// The frames waiting to go out on one STOMP connection, for its one writer task.
///
/// Handlers (answers and dead letters, or an ACK or NACK at once when there is nothing to
/// send) and the session (its DISCONNECT) add frames at any time without waiting
/// (``send(_:)``); the writer takes everything added since its last write in one go (``next()``)
/// and writes it with one flush. Under load, with hundreds of messages in hand, the answers
/// that finish while a write is under way leave together: one system call and one TCP segment
/// for many frames, for us and for the broker, instead of a write and a flush for each (an
/// `AsyncStream` of batches gave one at a time). The ACKs that follow a RECEIPT do not come
/// here: ``StompReceiptHandler`` writes them on the event loop.
///
/// Frames leave in the order they were added, and the frames of one ``send(_:)`` together.
/// Nothing bounds the outbox itself: what feeds it is bounded (at most `prefetch` messages in
/// hand, each with at most one answer or one ACK or NACK here).
final class StompOutbox: Sendable {
    private struct State {
        var frames: [StompFrame] = []
        var writer: CheckedContinuation<[StompFrame]?, Never>?
        var finished = false
    }

    private let state = Locked(State())

    /// Adds `frames` to go out after everything added before them; ignored once finished (the
    /// connection is over: what was not written is treated as a crash would leave it).
    func send(_ frames: [StompFrame]) {
        guard !frames.isEmpty else { return }
        let handOff = self.state.withLock { state -> (CheckedContinuation<[StompFrame]?, Never>, [StompFrame])? in
            guard !state.finished else { return nil }
            guard let writer = state.writer else {
                state.frames.append(contentsOf: frames)
                return nil
            }
            // A writer waits only when nothing was pending.
            state.writer = nil
            return (writer, frames)
        }
        if let (writer, frames) = handOff { writer.resume(returning: frames) }
    }

    /// Everything added since the last call, waiting while there is nothing; `nil` once
    /// ``finish()`` was called and everything was taken, or when the task is cancelled. For
    /// one writer.
    func next() async -> [StompFrame]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (writer: CheckedContinuation<[StompFrame]?, Never>) in
                let ready = self.state.withLock { state -> [StompFrame]?? in
                    if !state.frames.isEmpty {
                        defer { state.frames = [] }
                        return .some(state.frames)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.writer = writer
                    return nil
                }
                if let ready { writer.resume(returning: ready) }
            }
        } onCancel: {
            // Before the writer is stored, the check inside the lock above sees the cancellation.
            self.finish()
        }
    }

    /// No more frames will be written: a waiting writer gets `nil` once what is pending was
    /// taken, and later ``send(_:)`` calls are ignored.
    func finish() {
        let writer = self.state.withLock { state -> CheckedContinuation<[StompFrame]?, Never>? in
            state.finished = true
            defer { state.writer = nil }
            return state.writer
        }
        writer?.resume(returning: nil)
    }
}
