import Foundation
import NIOPosix
import SkyLib

/// Drops one file per input into a route's drop folder (written beside it, then renamed in, so
/// the initiator never sees half a file) and reads the outcomes where the initiator leaves
/// them: `DIR/.out/NAME.json` (answered), `DIR/.failed/NAME.error.json` (parked, with its code).
struct FileLoad: DrillLoad {
    let source = "files"
    let ledger = DrillLedger()
    /// A file is taken once: a second answer for it cannot be told from the first.
    let duplicatesAllowed = false
    /// The drop folder (absolute).
    let folder: String
    /// The file name's ending, matching the route's pattern (`.json`).
    let suffix: String
    /// Each file's content.
    let body: String
    /// The drill's id, at the start of every file's name.
    let drillID: String
    /// Where the file work runs.
    let threadPool: NIOThreadPool

    func run(_ pace: Pace, settle: Duration) async {
        // Outcomes are read every 100 ms while the load runs, so their times are within that.
        await DropFolderWriter.dropAndWatch(
            pace, settle: settle, every: .milliseconds(100), ledger: self.ledger,
            drop: { await self.drop(pace) }, collect: { await self.collect(pace: pace) }
        )
        await self.collect(pace: pace)
    }

    /// Drops one file per input due, until the load's end.
    private func drop(_ pace: Pace) async {
        let writer = DropFolderWriter(folder: self.folder, threadPool: self.threadPool)
        var index = 0
        while await pace.wait(for: index) {
            let name = "\(self.drillID)-\(index)\(self.suffix)"
            let sentAt = pace.now()
            // Not dropped (the disk full, say): not handed over, and not retried — the next
            // input is due. The drill counts only what reached the folder.
            if await writer.place(self.body, named: name) { self.ledger.sent(name, at: sentAt) }
            index += 1
        }
    }

    /// Reads `.out/` and `.failed/` for this drill's files.
    private func collect(pace: Pace) async {
        let prefix = self.drillID + "-"
        let found: [(String, DrillLedger.Outcome)] = (try? await self.threadPool.runIfActive { [folder] in
            var found: [(String, DrillLedger.Outcome)] = []
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/.out")) ?? [] where name.hasPrefix(prefix) && name.hasSuffix(".json") {
                found.append((String(name.dropLast(".json".count)), .answered))
            }
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/.failed")) ?? [] where name.hasPrefix(prefix) && name.hasSuffix(".error.json") {
                let input = String(name.dropLast(".error.json".count))
                let report = try? Data(contentsOf: URL(fileURLWithPath: folder + "/.failed/" + name))
                let code = report.flatMap { try? JSONParser.parse(Array($0)) }?["code"]?.stringValue ?? "unknown"
                found.append((input, .parked(code: code)))
            }
            return found
        }) ?? []
        let now = pace.now()
        for (name, outcome) in found where !self.ledger.isSettled(name) {
            self.ledger.record(outcome, for: name, at: now)
        }
    }
}
