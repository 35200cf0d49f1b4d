import Glibc
import NIOPosix
import SkyLib

/// Makes written answers durable in groups (group commit): one `syncfs(2)` of the folder's
/// file system covers every answer written before it began, so eight workers finishing
/// together pay for one sync instead of eight `fsync`s.
///
/// A worker writes its answer (temporary file renamed into place, not synced), then calls
/// ``sync(_:)``. The first caller leads: it takes every caller waiting, syncs once on the
/// thread pool and wakes them all with the outcome. Callers that arrive during that sync
/// wait for the next one, led by the first of them. No timer, no batching delay: under light
/// load each answer gets its own sync at once; under heavy load a sync covers as many answers
/// as finished while the previous one ran.
///
/// `syncfs` writes the whole file system's dirty data, not only ours: on a file system shared
/// with a heavy writer a sync waits for that writer's data too. It was chosen over an `fsync`
/// per answer and per directory because the answers of a group are spread over files and two
/// directories (`.out/` and the renamed names), which one `syncfs` covers in one round trip to
/// the disk (BENCHMARKS.md, benchmark 3).
final class SyncGroup: Sendable {
    private enum Role {
        case lead
        case done(Result<Void, DropFolderError>)
    }

    private struct State {
        var leading = false
        var waiting: [CheckedContinuation<Role, Never>] = []
    }

    private let state = Locked(State())
    private let syncing: @Sendable (DropFolder) throws(DropFolderError) -> Void

    /// - Parameter syncing: the sync itself (tests stand in a slow or failing one).
    init(syncing: @escaping @Sendable (DropFolder) throws(DropFolderError) -> Void = { folder throws(DropFolderError) in try folder.syncFileSystem() }) {
        self.syncing = syncing
    }

    /// Callers waiting for the next sync (for tests).
    var waiting: Int { self.state.withLock { $0.waiting.count } }

    /// Syncs answers that completed so far (joins a group).
    /// - Throws: the sync's error (for instance `EIO`); the answer may not be on disk, so the
    ///   input must stay in `.processing/`.
    func sync(_ folder: DropFolder) async throws(DropFolderError) {
        let role = await withCheckedContinuation { (continuation: CheckedContinuation<Role, Never>) in
            let lead = self.state.withLock { state -> Bool in
                if state.leading {
                    state.waiting.append(continuation)
                    return false
                }
                state.leading = true
                return true
            }
            if lead { continuation.resume(returning: .lead) }
        }
        switch role {
        case .done(let result):
            try result.get()
        case .lead:
            // Everyone waiting now wrote before they started waiting: this sync covers them.
            let group = self.state.withLock { state in
                defer { state.waiting = [] }
                return state.waiting
            }
            let result: Result<Void, DropFolderError>
            do {
                let syncing = self.syncing
                try await NIOThreadPool.singleton.runIfActive { try syncing(folder) }
                result = .success(())
            } catch let error as DropFolderError {
                result = .failure(error)
            } catch {
                result = .failure(DropFolderError(path: folder.root, reason: "cannot sync: \(error)"))
            }
            for waiter in group { waiter.resume(returning: .done(result)) }
            // Those who came during the sync: the first of them leads the next one.
            let next = self.state.withLock { state -> CheckedContinuation<Role, Never>? in
                if state.waiting.isEmpty {
                    state.leading = false
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume(returning: .lead)
            try result.get()
        }
    }
}
