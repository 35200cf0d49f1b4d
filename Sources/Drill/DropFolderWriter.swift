import Foundation
import NIOPosix
import SkyLib

/// What the two drop-folder loads (``FileLoad``, ``CSVLoad``) share: putting a file into a
/// watched folder whole, and dropping while the outcomes are read.
struct DropFolderWriter: Sendable {
    /// The drop folder (absolute).
    let folder: String
    /// Where the file work runs.
    let threadPool: NIOThreadPool

    /// Writes `text` beside the folder's files under a dotted name, then renames it in, so the
    /// initiator never sees half a file.
    /// - Returns: whether it is in the folder (not when the disk is full, say: then nothing is
    ///   left behind either).
    func place(_ text: String, named name: String) async -> Bool {
        let staged = self.folder + "/.drill-\(name).tmp"
        let placed = (try? await self.threadPool.runIfActive { [folder] in
            try Data(text.utf8).write(to: URL(fileURLWithPath: staged))
            return rename(staged, folder + "/" + name) == 0
        }) ?? false
        if !placed { unlink(staged) }
        return placed
    }

    /// Runs `drop` while `collect` reads outcomes every `every`; then reads on until every input
    /// of `ledger` has an outcome or `settle` past the load's end. The caller reads once more
    /// after (its final read may count more than outcomes).
    static func dropAndWatch(
        _ pace: Pace, settle: Duration, every: Duration, ledger: DrillLedger,
        drop: @escaping @Sendable () async -> Void, collect: @escaping @Sendable () async -> Void
    ) async {
        let dropping = Locked(true)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await drop()
                dropping.withLock { $0 = false }
            }
            group.addTask {
                let deadline = pace.end + settle
                while dropping.withLock({ $0 }) || !ledger.pending.isEmpty && ContinuousClock.now < deadline {
                    await collect()
                    try? await Task.sleep(for: every)
                }
            }
        }
    }
}
