import Foundation
import NIOPosix
import SkyLib

/// Drops CSV files into a route's folder, one a second holding that second's rows (a header,
/// then one row per input, the input's fields as columns), and reads each row's outcome by its
/// line: `.out/NAME.results.jsonl` (`{"line": N, …}`: answered) and `.out/NAME.rejects.csv`
/// (`line,error,row`: rejected, kept with its error).
struct CSVLoad: DrillLoad {
    let source = "csv"
    let ledger = DrillLedger()
    /// The initiator checkpoints: a row is written once, even across a crash.
    let duplicatesAllowed = false
    /// The drop folder (absolute).
    let folder: String
    /// The columns and each row's values.
    let columns: [String]
    /// The row every input is.
    let row: [String]
    /// The drill's id, at the start of every file's name.
    let drillID: String
    /// Where the file work runs.
    let threadPool: NIOThreadPool

    /// The columns and values of a JSON object input (`{"text":"drill"}` → `text` / `drill`).
    init(folder: String, input: JSONValue, drillID: String, threadPool: NIOThreadPool) {
        self.folder = folder
        let fields = (input.objectValue ?? ["text": .string("drill")]).sorted { $0.key < $1.key }
        self.columns = fields.map(\.key)
        self.row = fields.map { $0.value.stringValue ?? JSONWriter.string($0.value) }
        self.drillID = drillID
        self.threadPool = threadPool
    }

    func run(_ pace: Pace, settle: Duration) async {
        await DropFolderWriter.dropAndWatch(
            pace, settle: settle, every: .milliseconds(200), ledger: self.ledger,
            drop: { await self.drop(pace) }, collect: { _ = await self.collect(pace: pace) }
        )
        // Lines written more than once in the final outputs are duplicates.
        for (id, count) in await self.collect(pace: pace) where count > 1 {
            for _ in 1..<count { self.ledger.record(.answered, for: id, at: pace.now()) }
        }
    }

    /// Each second, one file with the rows due in it.
    private func drop(_ pace: Pace) async {
        let writer = DropFolderWriter(folder: self.folder, threadPool: self.threadPool)
        var index = 0
        var file = 0
        while ContinuousClock.now < pace.end {
            let second = pace.start + .seconds(file + 1)
            try? await Task.sleep(until: min(second, pace.end))
            var count = 0
            while pace.due(index + count) <= .now && pace.due(index + count) < pace.end { count += 1 }
            defer { file += 1 }
            guard count > 0 else { continue }
            let name = "\(self.drillID)-\(file).csv"
            let text = ([self.columns] + Array(repeating: self.row, count: count)).map { $0.map(Self.quoted).joined(separator: ",") }.joined(separator: "\n") + "\n"
            let sentAt = pace.now()
            if await writer.place(text, named: name) {
                // Line 1 is the header: rows are lines 2 … count + 1.
                for line in 2...(count + 1) { self.ledger.sent("\(name):\(line)", at: sentAt) }
            }
            index += count
        }
    }

    /// A field as CSV writes it: quoted when it holds a comma, quote or line break.
    static func quoted(_ field: String) -> String {
        field.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }

    /// Reads every output of this drill's files; records first outcomes and answers how often
    /// each row appears.
    private func collect(pace: Pace) async -> [String: Int] {
        let prefix = self.drillID + "-"
        let found: [(String, DrillLedger.Outcome)] = (try? await self.threadPool.runIfActive { [folder] in
            var found: [(String, DrillLedger.Outcome)] = []
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/.out")) ?? [] where name.hasPrefix(prefix) {
                guard let text = try? String(contentsOfFile: folder + "/.out/" + name, encoding: .utf8) else { continue }
                if name.hasSuffix(".results.jsonl") {
                    let file = String(name.dropLast(".results.jsonl".count))
                    for line in text.split(separator: "\n") {
                        guard let number = (try? JSONParser.parse(String(line)))?["line"]?.intValue else { continue }
                        found.append(("\(file):\(number)", .answered))
                    }
                } else if name.hasSuffix(".rejects.csv") {
                    let file = String(name.dropLast(".rejects.csv".count))
                    for line in text.split(separator: "\n") {
                        guard let comma = line.firstIndex(of: ","), let number = Int(line[..<comma]) else { continue }
                        found.append(("\(file):\(number)", .parked(code: "rejected")))
                    }
                }
            }
            return found
        }) ?? []
        var counts: [String: Int] = [:]
        let now = pace.now()
        for (id, outcome) in found {
            counts[id, default: 0] += 1
            if !self.ledger.isSettled(id) { self.ledger.record(outcome, for: id, at: now) }
        }
        return counts
    }
}
