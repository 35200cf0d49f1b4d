import SkyLib
import RouteModel

/// Work that is done but not yet durable, waiting to be committed in groups (group commit).
///
/// Workers hand an item over once its answer is written (``submit(_:)``) and go on to their
/// next file at once; one committer takes everything handed over so far (``nextGroup()``),
/// makes it durable with one sync, finishes it (the inputs move) and frees its room
/// (``committed(_:)``). No timer and no batching delay: under light load a group is one item;
/// under heavy load a group holds everything written while the previous sync ran.
///
/// Why not a sync joined by each worker: a worker waiting for the disk is a worker not
/// running the route, so `concurrency` workers could never finish more than `concurrency`
/// files per sync, the same bound as a program that fsyncs each file from `concurrency`
/// processes (BENCHMARKS.md, benchmark 3). Handed over, the syncs no longer hold the workers.
///
/// At most `limit` items are handed over and not yet committed: a worker that would go past it
/// waits for room, so a slow or failing disk slows the workers down instead of growing the
/// list, and at most `limit` inputs run again after a crash.
final class CommitQueue<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        /// Handed over and not yet committed (waiting, or in the group being committed).
        var outstanding = 0
        var committer: CheckedContinuation<[Item]?, Never>?
        /// Workers waiting for room.
        var blocked: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    /// Most items handed over and not yet committed.
    let limit: Int
    private let state = Locked(State())

    /// - Parameter limit: most items handed over and not yet committed (at least 1).
    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Hands over an item whose work is written; returns at once unless `limit` items are
    /// already outstanding, then waits for room. Not to be called after ``finish()``.
    func submit(_ item: Item) async {
        await withCheckedContinuation { (room: CheckedContinuation<Void, Never>) in
            let hasRoom = self.state.withLock { state -> Bool in
                guard state.outstanding >= self.limit else {
                    state.outstanding += 1
                    return true
                }
                state.blocked.append(room)
                return false
            }
            if hasRoom { room.resume() }
        }
        // The room is ours (``committed(_:)`` counted it when it woke us).
        let handOff = self.state.withLock { state -> (CheckedContinuation<[Item]?, Never>, [Item])? in
            state.items.append(item)
            guard let committer = state.committer else { return nil }
            state.committer = nil
            defer { state.items = [] }
            return (committer, state.items)
        }
        if let (committer, items) = handOff { committer.resume(returning: items) }
    }

    /// Everything handed over since the last group, waiting while there is nothing; `nil`
    /// once ``finish()`` was called and nothing is left. For one committer.
    func nextGroup() async -> [Item]? {
        await withCheckedContinuation { (committer: CheckedContinuation<[Item]?, Never>) in
            let ready = self.state.withLock { state -> [Item]?? in
                if !state.items.isEmpty {
                    defer { state.items = [] }
                    return .some(state.items)
                }
                if state.finished { return .some(nil) }
                state.committer = committer
                return nil
            }
            if let ready { committer.resume(returning: ready) }
        }
    }

    /// Frees the room of `count` committed items (durable, or given up at shutdown), waking
    /// workers waiting for it.
    func committed(_ count: Int) {
        let woken = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.outstanding -= count
            var woken: [CheckedContinuation<Void, Never>] = []
            while state.outstanding < self.limit, !state.blocked.isEmpty {
                woken.append(state.blocked.removeFirst())
                state.outstanding += 1
            }
            return woken
        }
        for worker in woken { worker.resume() }
    }

    /// Items handed over and not yet committed.
    var outstanding: Int { self.state.withLock { $0.outstanding } }

    /// Whether ``finish()`` was called: the committer drains what is left and ends.
    var isFinished: Bool { self.state.withLock { $0.finished } }

    /// No more items will come (every worker has ended); the committer gets what is left, then `nil`.
    func finish() {
        let committer = self.state.withLock { state -> CheckedContinuation<[Item]?, Never>? in
            state.finished = true
            guard state.items.isEmpty, let committer = state.committer else { return nil }
            state.committer = nil
            return committer
        }
        committer?.resume(returning: nil)
    }
}
