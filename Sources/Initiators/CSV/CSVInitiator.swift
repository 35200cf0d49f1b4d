import Foundation
public import Logging
import NIOPosix
import ServiceLifecycle
public import SkyLib

/// The CSV initiator: every row of a CSV file dropped into a folder becomes one route request.
///
/// Files are found and claimed like the file initiator's (complete files only, atomic rename
/// into `.processing/`). Rows are streamed (memory stays flat however large the file) and run
/// with bounded concurrency; answers are written in input order to
/// `.out/NAME.results.jsonl` (`{"line": N, "result": …}` per row), and rows that are malformed
/// or whose route failed to `.out/NAME.rejects.csv` (`line,error,row`: the original row
/// kept as it was). A malformed row is a reject, never the end of the file.
///
/// Progress is checkpointed (`.processing/NAME.checkpoint`: byte offset, line, output sizes)
/// after each flushed batch; after a crash the file resumes there, the outputs cut back to
/// the checkpoint, so no row is lost and none is written twice (rows in flight at the crash
/// run again).
public final class CSVInitiator: Initiator, Sendable {
    public struct Configuration: Sendable {
        public var route: String
        public var source: CSVSource
        /// Rows between checkpoints (and output flushes).
        public var checkpointRows: Int = 500
        /// How often progress is logged.
        public var progressInterval: Duration = .seconds(5)
        public var scanInterval: Duration = .seconds(1)

        public init(route: String, source: CSVSource) {
            self.route = route
            self.source = source
        }
    }

    public let configuration: Configuration
    private let runner: any RouteRunner
    private let counters: Counters
    private let logger: Logger

    public init(configuration: Configuration, runner: any RouteRunner, counters: Counters, logger: Logger) {
        self.configuration = configuration
        self.runner = runner
        self.counters = counters
        var logger = logger
        logger[metadataKey: "initiator"] = "csv"
        logger[metadataKey: "dir"] = "\(configuration.source.dir)"
        self.logger = logger
    }

    public var summary: String { "csv \(self.configuration.source.dir)/\(self.configuration.source.pattern) → route \(self.configuration.route)" }

    private var prefix: String { "csv.\(self.configuration.route)" }

    public func run() async throws {
        let source = self.configuration.source
        // One file at a time per folder; the rows of that file run concurrently.
        let loop = DropFolderLoop(dir: source.dir, pattern: source.pattern, workers: 1, scanInterval: self.configuration.scanInterval, logger: self.logger)
        try await loop.run { item, folder, isStopping in await self.handle(item, in: folder, isStopping: isStopping) }
    }

    private func handle(_ item: DropItem, in folder: DropFolder, isStopping: @escaping @Sendable () -> Bool) async {
        let stem: String
        switch item {
        case .claimed(let claimed): stem = claimed
        case .fresh(let name):
            guard let (claimed, escapes) = try? await NIOThreadPool.singleton.runIfActive({ () throws -> (String, Bool)? in
                let escapes = folder.escapes(name)
                return try folder.claim(name).map { ($0, escapes) }
            }) else { return }
            stem = claimed
            if escapes {
                await self.park(stem, in: folder, reason: "refused: symlink to a file outside \(folder.root)", code: "refused")
                return
            }
        }
        do {
            let finished = try await self.process(stem, in: folder, isStopping: isStopping)
            guard finished else { return }  // stopped mid-file: the checkpoint resumes it
            try await NIOThreadPool.singleton.runIfActive {
                try folder.move(stem, to: folder.done)
                unlink(folder.processing + "/" + stem + ".checkpoint")
            }
            self.counters.add("\(self.prefix)-files-done")
        } catch {
            await self.park(stem, in: folder, reason: "\(error)", code: "unreadable")
        }
    }

    /// Moves a CSV file that could not be read at all to `.failed/` beside `NAME.error.json`.
    private func park(_ stem: String, in folder: DropFolder, reason: String, code: String) async {
        self.logger.error("CSV file failed; parked in .failed/", metadata: ["file": "\(stem)", "error": "\(reason)"])
        let data = Data(JSONWriter.string(["file": .string(stem), "route": .string(self.configuration.route), "code": .string(code), "reason": .string(reason)]).utf8)
        try? await NIOThreadPool.singleton.runIfActive {
            try folder.writeAtomically(data, to: folder.failed, name: stem + ".error.json")
            try folder.move(stem, to: folder.failed)
        }
        self.counters.add("\(self.prefix)-files-failed")
    }

    /// The outcome of one row.
    enum Outcome: Sendable {
        case result(JSONValue)
        case reject(String)
    }

    /// Streams the rows of one claimed file through the route.
    /// - Returns: `false` when stopped before the end (the checkpoint keeps the place).
    func process(_ stem: String, in folder: DropFolder, isStopping: @escaping @Sendable () -> Bool) async throws -> Bool {
        let source = self.configuration.source
        let output = try await NIOThreadPool.singleton.runIfActive { try CSVOutput(folder: folder, stem: stem) }
        let checkpoint = output.checkpoint
        var reader = CSVReader(delimiter: source.delimiter.asciiValue ?? UInt8(ascii: ","), offset: checkpoint.offset, line: checkpoint.line)
        var header = checkpoint.header
        let input = try await NIOThreadPool.singleton.runIfActive { () throws -> FileHandle in
            guard let handle = FileHandle(forReadingAtPath: folder.processing + "/" + stem) else {
                throw DropFolderError(path: folder.processing + "/" + stem, reason: "cannot open")
            }
            try handle.seek(toOffset: UInt64(checkpoint.offset))
            return handle
        }
        defer { try? input.close() }
        let totalBytes = (try? FileManager.default.attributesOfItem(atPath: folder.processing + "/" + stem)[.size] as? NSNumber)?.int64Value ?? 0
        if checkpoint.offset > 0 {
            self.logger.notice("resuming at line \(checkpoint.line) (byte \(checkpoint.offset) of \(totalBytes))", metadata: ["file": "\(stem)"])
        }
        let concurrency = max(1, source.concurrency)
        var sequence = 0
        var nextToWrite = 0
        var pending: [Int: [(CSVReader.Record, Outcome)]] = [:]
        var committed = checkpoint
        var rowsSinceCheckpoint = 0
        var rowsDone = 0
        let started = ContinuousClock.now
        var lastProgress = started
        var stopped = false

        // Rows go out in batches: a task per row cost more than a row's work in a fast route
        // (BENCHMARKS.md). Within a batch rows run one after another, so at most `concurrency`
        // rows still run at once; answers are written in input order whatever finishes first.
        let batchSize = 32
        await withTaskGroup(of: (Int, [(CSVReader.Record, Outcome)]).self) { group in
            var inFlight = 0
            var batch: [CSVReader.Record] = []
            func collect(_ done: (Int, [(CSVReader.Record, Outcome)])) {
                inFlight -= 1
                pending[done.0] = done.1
                while let rows = pending.removeValue(forKey: nextToWrite) {
                    for (record, outcome) in rows {
                        output.append(record: record, outcome: outcome)
                        committed.offset = record.endOffset
                        committed.line = record.nextLine
                        rowsSinceCheckpoint += 1
                        rowsDone += 1
                    }
                    nextToWrite += 1
                }
            }
            reading: while true {
                let chunk = (try? await NIOThreadPool.singleton.runIfActive { try input.read(upToCount: 256 * 1024) ?? Data() }) ?? Data()
                var records: [CSVReader.Record] = []
                if chunk.isEmpty {
                    reader.finish(into: &records)
                } else {
                    reader.feed(chunk, into: &records)
                }
                var index = 0
                var stopRequested = false
                while index < records.count || !batch.isEmpty {
                    // Fill a batch from this chunk; a chunk's last, short batch goes out too.
                    while index < records.count && batch.count < batchSize {
                        let record = records[index]
                        index += 1
                        if source.header && header == nil && record.problem == nil {
                            header = record.fields
                            committed.header = record.fields
                            committed.offset = record.endOffset
                            committed.line = record.nextLine
                            continue
                        }
                        batch.append(record)
                    }
                    guard !batch.isEmpty else { break }
                    while inFlight >= concurrency, let done = await group.next() { collect(done) }
                    let number = sequence
                    sequence += 1
                    inFlight += 1
                    let rows = batch
                    batch.removeAll(keepingCapacity: true)
                    let header = header
                    group.addTask {
                        var outcomes: [(CSVReader.Record, Outcome)] = []
                        outcomes.reserveCapacity(rows.count)
                        for record in rows { outcomes.append((record, await self.run(record, header: header, file: stem))) }
                        return (number, outcomes)
                    }
                    if rowsSinceCheckpoint >= self.configuration.checkpointRows {
                        committed.resultsBytes = output.resultsBytes
                        committed.rejectsBytes = output.rejectsBytes
                        let snapshot = committed
                        try? await NIOThreadPool.singleton.runIfActive { try output.flush(checkpoint: snapshot) }
                        rowsSinceCheckpoint = 0
                    }
                    if isStopping() {
                        stopRequested = true
                        break
                    }
                }
                if ContinuousClock.now - lastProgress >= self.configuration.progressInterval {
                    lastProgress = ContinuousClock.now
                    let seconds = Double((ContinuousClock.now - started).components.seconds) + 0.001
                    self.logger.info(
                        "progress: \(rowsDone) rows, \(Int(Double(rowsDone) / seconds)) rows/s, byte \(committed.offset) of \(totalBytes)",
                        metadata: ["file": "\(stem)"]
                    )
                }
                if chunk.isEmpty { break reading }
                if stopRequested || isStopping() {
                    stopped = true
                    break reading
                }
            }
            while let done = await group.next() { collect(done) }
        }
        committed.resultsBytes = output.resultsBytes
        committed.rejectsBytes = output.rejectsBytes
        let final = committed
        try await NIOThreadPool.singleton.runIfActive { try output.flush(checkpoint: final) }
        output.close()
        self.counters.add("\(self.prefix)-bytes", committed.offset - checkpoint.offset)
        self.logger.info("file \(stopped ? "paused" : "done"): \(rowsDone) rows", metadata: ["file": "\(stem)"])
        return !stopped
    }

    /// Runs one row through the route.
    private func run(_ record: CSVReader.Record, header: [String]?, file: String) async -> Outcome {
        if let problem = record.problem {
            self.counters.add("\(self.prefix)-rejects")
            return .reject("malformed row: \(problem)")
        }
        let payload: JSONValue
        if let header {
            guard record.fields.count == header.count else {
                self.counters.add("\(self.prefix)-rejects")
                return .reject("row has \(record.fields.count) fields, the header has \(header.count)")
            }
            payload = .object(Dictionary(zip(header, record.fields.map(JSONValue.string)), uniquingKeysWith: { first, _ in first }))
        } else {
            payload = .array(record.fields.map(JSONValue.string))
        }
        let request = RequestEnvelope(
            route: self.configuration.route, payload: payload,
            meta: ["source": "csv", "file": file, "line": "\(record.line)"]
        )
        do {
            let result = try await self.runner.run(request)
            self.counters.add("\(self.prefix)-rows")
            return .result(result.answerDocument)
        } catch {
            self.counters.add("\(self.prefix)-rejects")
            return .reject(error.description)
        }
    }
}
