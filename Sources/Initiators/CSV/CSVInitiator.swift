import Foundation
public import Logging
public import NIOPosix
import ServiceLifecycle
public import SkyLib
public import RouteModel

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
/// run again). A checkpoint that cannot be written pauses the file and is retried with
/// back-off; one that cannot be read parks the file rather than start it over.
///
/// A file that cannot be read to its end (a read error), whose header repeats a column, or
/// whose header is malformed goes to `.failed/` with `NAME.error.json` naming the line and
/// byte; rows answered before a read error stay answered. Memory is bounded by
/// configuration: at most `concurrency` batches of rows are held, running or waiting to be
/// written in order, and about `unsyncedRowsLimit` answers waiting for the disk; reading
/// waits while the earliest batch is slow or the disk is behind.
public final class CSVInitiator: Initiator, Sendable {
    /// Which route the rows feed and which folder they come from.
    public struct Configuration: Sendable {
        /// The route each row runs.
        public var route: String
        /// The route's `csv:` source.
        public var source: CSVSource
        /// The fewest rows between checkpoints (and output flushes): rows answered while a
        /// checkpoint is being written go into the next one.
        public var checkpointRows: Int = 500
        /// Answered rows that may wait in memory, not yet on disk, while a checkpoint is being
        /// written; past that, reading waits for it. A disk slower than the rows then makes
        /// checkpoints larger instead of the file slower, and a crash runs at most this many
        /// rows (and those in flight) again.
        public var unsyncedRowsLimit: Int = 4000
        /// How often progress is logged.
        public var progressInterval: Duration = .seconds(5)
        /// How often the folder is listed besides inotify events (files missed while away).
        public var scanInterval: Duration = .seconds(1)
        /// Longest row taken, line end not counted; a longer one is rejected, copied whole
        /// into the rejects file.
        public var maxRecordBytes: Int = 1 << 20
        /// Called before each read with the byte offset reached; throwing stands for a read
        /// error there. For tests: a real mid-file read error cannot be made on demand.
        var beforeRead: (@Sendable (_ offset: Int64) throws -> Void)?

        /// Creates a `Configuration` from its parts.
        public init(route: String, source: CSVSource) {
            self.route = route
            self.source = source
        }
    }

    /// What this initiator was made with.
    public let configuration: Configuration
    /// Runs each row's route (the router; a stand-in in tests).
    private let runner: any RouteRunner
    /// The process's counters (`csv.ROUTE-rows`, `-rejects`, `-checkpoints` …) and its progress
    /// board.
    private let counters: Counters
    /// The initiator's logger, with the folder in its metadata.
    private let logger: Logger
    /// Where the folder's blocking calls run.
    let threadPool: NIOThreadPool
    /// Where rejected rows and parked files are reported (`sky failed`), beside `rejects.csv`
    /// and `.failed/`.
    let failures: any FailedInputs

    /// Creates a `CSVInitiator` from its parts.
    /// - Parameters:
    ///   - threadPool: where the folder's blocking calls run (reads, renames, fsync): the node's
    ///     pool, never an event loop.
    ///   - failures: where rejected rows and parked files are reported, so `sky failed` lists
    ///     and redrives them.
    public init(
        configuration: Configuration, runner: any RouteRunner, counters: Counters, threadPool: NIOThreadPool, failures: any FailedInputs = NoFailedInputs(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.failures = failures
        self.threadPool = threadPool
        self.runner = runner
        self.counters = counters
        var logger = logger
        logger[metadataKey: "initiator"] = "csv"
        logger[metadataKey: "dir"] = "\(configuration.source.dir)"
        self.logger = logger
    }

    public var summary: String { "csv \(self.configuration.source.dir)/\(self.configuration.source.pattern) → route \(self.configuration.route)" }

    /// Counters are named `csv.ROUTE-…`.
    private var prefix: String { "csv.\(self.configuration.route)" }

    /// Rows sent to the route together, in one task (a task per row cost more than a row's
    /// work in a fast route; BENCHMARKS.md). Rows of a route with a remote step run one after
    /// another in their task, so their batches stay small enough to spread a short file over
    /// the source's concurrency.
    static let batchSize = 32
    /// Rows sent together to a route answered at once in this process
    /// (``RouteRunner/runsPromptly(_:)``): it runs them step by step, and the bigger batch
    /// spreads each batch's fixed cost (a task, a wake-up, the counters) over four times the rows
    /// (`make bench` 4d showed the difference; DECISIONS.md).
    static let promptBatchSize = 128
    /// Bytes read at a time. Every record of a read is decoded before its rows go out, so
    /// this bounds the records held at once (about a thousand short rows); 256 KiB reads held
    /// eight times as many and made the allocator's footprint grow with the file (heaptrack:
    /// the records of one read were the largest live allocation).
    static let readSize = 32 * 1024

    public func run() async throws {
        let source = self.configuration.source
        // One file at a time per folder; the rows of that file run concurrently.
        let loop = DropFolderLoop(
            dir: source.dir, pattern: source.pattern, workers: 1, scanInterval: self.configuration.scanInterval, logger: self.logger,
            counters: self.counters, threadPool: self.threadPool, counterPrefix: self.prefix
        )
        try await loop.run { item, folder, refusals, isStopping, _ in await self.handle(item, in: folder, refusals: refusals, isStopping: isStopping) }
    }

    /// Takes one file (claims a fresh name, or resumes one left in `.processing/`), processes it,
    /// then moves it to `.done/` or parks it; a stop leaves it where it is for the next start.
    private func handle(_ item: DropItem, in folder: DropFolder, refusals: Refusals, isStopping: @escaping @Sendable () -> Bool) async {
        let stem: String
        switch item {
        case .claimed(let claimed): stem = claimed
        case .fresh(let name):
            let take: DropFolder.Take
            do {
                take = try await self.threadPool.runIfActive { try folder.take(name) }
            } catch {
                // The file stays where it is and is tried again at the next scan (or start:
                // a stop past the drain limit cancels the take, which is no error).
                if Task.isCancelled { return }
                self.counters.add("\(self.prefix)-claim-errors")
                self.logger.error("cannot take file", metadata: ["file": "\(name)", "error": "\(error)"])
                return
            }
            guard let (claimed, escapes) = refusals.claimed(name, take) else { return }  // gone or refused
            stem = claimed
            if escapes {
                await self.park(stem, in: folder, reason: "refused: symlink to a file outside \(folder.root)", code: "refused")
                return
            }
        }
        let outcome: FileOutcome
        do {
            outcome = try await self.process(stem, in: folder, isStopping: isStopping)
        } catch let error as CSVCheckpointError {
            outcome = .failed(code: "bad_checkpoint", reason: error.description)
        } catch {
            outcome = .failed(code: "unreadable", reason: "\(error)")
        }
        switch outcome {
        case .paused:
            return  // stopped mid-file: the checkpoint resumes it
        case .failed(let code, let reason):
            await self.park(stem, in: folder, reason: reason, code: code)
        case .finished:
            let moved = await BackoffRetry(logger: self.logger, counters: self.counters, threadPool: self.threadPool, counter: "\(self.prefix)-move-errors").run(
                "cannot move the finished file out of .processing/; retrying with backoff", file: stem
            ) {
                try folder.move(stem, to: folder.done)
                unlink(folder.processing + "/" + stem + ".checkpoint")
            }
            if moved { self.counters.add("\(self.prefix)-files-done") }
        }
    }

    /// Moves a CSV file that could not be read to the end to `.failed/` beside
    /// `NAME.error.json` (its checkpoint too, so the outputs can be matched to it).
    private func park(_ stem: String, in folder: DropFolder, reason: String, code: String) async {
        self.logger.error("CSV file failed; parked in .failed/", metadata: ["file": "\(stem)", "error": "\(reason)"])
        let document: JSONValue = [
            "file": .string(stem), "route": .string(self.configuration.route), "code": .string(code), "reason": .string(reason),
            "at": .string(ISO8601DateFormatter().string(from: Date())),
        ]
        let data = Data(JSONWriter.string(document).utf8)
        let parked = await BackoffRetry(logger: self.logger, counters: self.counters, threadPool: self.threadPool, counter: "\(self.prefix)-move-errors").run(
            "cannot park the failed file in .failed/; retrying with backoff", file: stem
        ) {
            try folder.writeAtomically(data, to: folder.failed, name: stem + ".error.json", durable: true)
            let checkpoint = folder.processing + "/" + stem + ".checkpoint"
            if FileManager.default.fileExists(atPath: checkpoint) {
                guard rename(checkpoint, folder.failed + "/" + stem + ".checkpoint") == 0 else {
                    throw DropFolderError(path: checkpoint, reason: "cannot move to .failed/: \(String(cString: strerror(errno)))")
                }
            }
            try folder.move(stem, to: folder.failed)
        }
        if parked { self.counters.add("\(self.prefix)-files-failed") }
        self.failures.failed(FailedInput(
            route: self.configuration.route, source: .csv, resource: self.configuration.source.dir, identity: .stable(stem), input: nil,
            details: ["file": stem, "whole": "true"], error: SkyError(.badRequest, "\(code): \(reason)")
        ))
    }

    /// What a child task of a file's processing finished.
    enum Finished: Sendable {
        /// A batch of rows and their outcomes, by batch number.
        case rows(Int, [(CSVReader.Record, Outcome)])
        /// A checkpoint write: whether it was written (`false`: stopped before it could be).
        case written(Bool)
    }

    /// The outcome of one row.
    enum Outcome: Sendable {
        case result(JSONValue)
        /// Rejected: the reason `rejects.csv` gives, and the route's error when the route failed
        /// it (a malformed row has none).
        case reject(String, SkyError?)
        /// Not run to its end because of a stop (not started once stopping, or cut short past
        /// the drain limit): neither answered nor rejected. The file pauses before this row,
        /// which runs when the file resumes.
        case interrupted
    }

    /// How the processing of one file ended.
    enum FileOutcome: Sendable, Equatable {
        /// Every row answered or rejected.
        case finished
        /// Stopped before the end; the checkpoint keeps the place.
        case paused
        /// The file cannot go on: park it (rows already answered stay answered).
        case failed(code: String, reason: String)
    }

    /// Streams the rows of one claimed file through the route: a ``CSVFileReader`` reads it in
    /// chunks from its checkpoint, batches of rows run concurrently, a ``ReorderBuffer`` puts
    /// their answers back in input order into the outputs, and a ``CheckpointWriter`` makes
    /// them durable in groups while the next rows run; a ``CSVFileRun`` holds them for the file.
    func process(_ stem: String, in folder: DropFolder, isStopping: @escaping @Sendable () -> Bool) async throws -> FileOutcome {
        let source = self.configuration.source
        let output = try await self.threadPool.runIfActive { try CSVOutput(folder: folder, stem: stem) }
        let checkpoint = output.checkpoint
        let (input, totalBytes) = try await self.open(folder.processing + "/" + stem, at: checkpoint.offset)
        defer {
            do {
                try input.close()
            } catch {
                self.logger.warning("cannot close the input", metadata: ["file": "\(stem)", "error": "\(error)"])
            }
        }
        if checkpoint.offset > 0 {
            self.logger.notice("resuming at line \(checkpoint.line) (byte \(checkpoint.offset) of \(totalBytes))", metadata: ["file": "\(stem)"])
        }
        let progress = self.counters.progress.begin(
            .csv, route: self.configuration.route, name: source.dir + "/" + stem, totalBytes: totalBytes, startingAt: checkpoint.offset
        )
        defer { self.counters.progress.end(progress) }
        let origin = try await self.threadPool.runIfActive { CSVRedriveOrigin.read(folder: folder, stem: stem) }
        var file = CSVFileRun(
            stem: stem, output: output, reader: self.fileReader(input, from: checkpoint, totalBytes: totalBytes),
            writer: CheckpointWriter(
                retry: BackoffRetry(logger: self.logger, counters: self.counters, threadPool: self.threadPool, counter: "\(self.prefix)-checkpoint-errors"),
                written: self.counters.cell("\(self.prefix)-checkpoints"), file: stem
            ),
            progress: progress
        )
        let concurrency = max(1, source.concurrency)
        // An ordered source runs its rows one per task: a row waiting for its key's lane then
        // holds up only itself, not the rest of a batch of other keys.
        // Sized once per file: a reload that changes the route's steps changes how its rows
        // run (each batch looks the route up), not how many go together.
        let batchSize =
            source.order != nil ? 1 : self.runner.route(named: self.configuration.route).map(self.runner.runsPromptly) == true ? Self.promptBatchSize : Self.batchSize
        let lanes = KeyedLanes()
        let tally = (rows: self.counters.cell("\(self.prefix)-rows"), rejects: self.counters.cell("\(self.prefix)-rejects"))
        await withTaskGroup(of: Finished.self) { group in
            reading: while true {
                let read: (records: [CSVReader.Record], ended: Bool)
                do throws(CSVFileReader.ReadError) {
                    read = try await file.reader.next()
                } catch {
                    // Not the end of the file: rows after this point were never read. The
                    // rows read so far finish; then the file is parked, naming the place.
                    self.counters.add("\(self.prefix)-read-errors")
                    file.outcome = .failed(code: "read_error", reason: error.reason)
                    break reading
                }
                var index = 0
                while index < read.records.count || !file.batch.isEmpty {
                    // Fill a batch from this chunk; a chunk's last, short batch goes out too.
                    guard file.fillBatch(from: read.records, at: &index, size: batchSize) else { break reading }
                    guard !file.batch.isEmpty else { break }
                    while file.order.outstanding >= concurrency, let done = await group.next() { file.collect(done) }
                    let (number, rows) = file.takeBatch()
                    self.start(rows, number: number, header: file.reader.header, file: stem, origin: origin, lanes: lanes, tally: tally, isStopping: isStopping, in: &group)
                    // Reading waits here while too many answered rows wait for the disk: a
                    // file whose place cannot be kept does not run far ahead of it.
                    while file.writer.writing, file.order.rowsSinceCheckpoint >= self.configuration.unsyncedRowsLimit, let done = await group.next() {
                        file.collect(done)
                    }
                    if file.writer.stopped {
                        file.outcome = .paused
                        break reading
                    }
                    file.checkpointIfDue(every: self.configuration.checkpointRows, in: &group, shouldStop: isStopping)
                    if file.pausesHere(isStopping: isStopping) { break reading }
                }
                file.logProgressIfDue(every: self.configuration.progressInterval, logger: self.logger)
                if read.ended || file.pausesHere(isStopping: isStopping) { break reading }
            }
            while let done = await group.next() { file.collect(done) }
        }
        let outcome = await file.finish(bytes: self.counters.cell("\(self.prefix)-bytes"), logger: self.logger, shouldStop: isStopping)
        if outcome == .finished, origin != nil { _ = try? await self.threadPool.runIfActive { CSVRedriveOrigin.remove(folder: folder, stem: stem) } }
        return outcome
    }

    /// Opens the claimed file at `offset` on the thread pool; answers it with the file's size.
    func open(_ path: String, at offset: Int64) async throws -> (FileHandle, Int64) {
        try await self.threadPool.runIfActive { () throws -> (FileHandle, Int64) in
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw DropFolderError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
            }
            try handle.seek(toOffset: UInt64(offset))
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber
            return (handle, size?.int64Value ?? 0)
        }
    }

    /// The reader of `input` for this source, from `checkpoint`'s place and header.
    func fileReader(_ input: FileHandle, from checkpoint: CSVCheckpoint, totalBytes: Int64) -> CSVFileReader {
        let source = self.configuration.source
        return CSVFileReader(
            reader: CSVReader(
                delimiter: source.delimiter.asciiValue ?? UInt8(ascii: ","), maxRecordBytes: self.configuration.maxRecordBytes,
                encoding: CSVReader.Encoding(rawValue: source.encoding) ?? .utf8, offset: checkpoint.offset, line: checkpoint.line
            ),
            input: input, header: checkpoint.header, expectsHeader: source.header, totalBytes: totalBytes, readSize: Self.readSize,
            beforeRead: self.configuration.beforeRead, threadPool: self.threadPool
        )
    }

    /// Runs a batch of rows in a child task, one row after another, answering their outcomes
    /// under the batch's number.
    /// - Parameter origin: where the rows of a redrive file came from (their file and lines);
    ///   `nil` for a file dropped by a user.
    /// - Parameter lanes: an ordered source's lanes, whose places the rows take here, in file
    ///   order, before their task starts.
    private func start(
        _ rows: [CSVReader.Record], number: Int, header: [String]?, file: String, origin: CSVRedriveOrigin?, lanes: KeyedLanes,
        tally: (rows: CounterCell, rejects: CounterCell), isStopping: @escaping @Sendable () -> Bool, in group: inout TaskGroup<Finished>
    ) {
        let order = self.configuration.source.order
        let tickets = rows.map { record in order.flatMap { Self.orderKey(of: record, column: $0.key, header: header) }.map(lanes.reserve) }
        group.addTask {
            // A redrive file's rows answer and fail under the lines they had in their own file.
            let rows = origin.map { origin in rows.map(origin.original) } ?? rows
            let file = origin?.file ?? file
            // Each row's meta is this with its line set: one copy per row, not a new dictionary.
            let meta: [String: String] = ["source": "csv", "file": file, "line": ""]
            // Looked up once for the batch: its rows run on the revision it found (a reload
            // reaches the next batch).
            let route = self.runner.route(named: self.configuration.route)
            // A route answered at once here runs the batch as one unit of work; any other runs
            // its rows one at a time below, each counted and reported as it ends (a slow row's
            // neighbours do not wait for the batch to be counted).
            if order == nil, let route, self.runner.runsPromptly(route) {
                return .rows(number, await self.runBatch(rows, header: header, meta: meta, route: route, file: file, tally: tally, isStopping: isStopping))
            }
            var outcomes: [(CSVReader.Record, Outcome)] = []
            outcomes.reserveCapacity(rows.count)
            for (record, ticket) in zip(rows, tickets) {
                if let ticket { await lanes.wait(for: ticket) }
                // A stop lets the row in hand finish, not the rest of its batch (nor a row that
                // waited behind its key): the file pauses before the first row not run.
                guard !isStopping(), ticket.map(lanes.isTurn) ?? true else {
                    if let ticket { lanes.leave(ticket) }
                    outcomes.append((record, .interrupted))
                    continue
                }
                var outcome = await self.run(record, header: header, meta: meta, route: route, tally: tally)
                if case .reject(_, let error?) = outcome, let ticket, order?.onFailure == .hold, !Task.isCancelled {
                    outcome = await self.hold(record, key: ticket.key, error: error, file: file, header: header, isStopping: isStopping) {
                        await self.run(record, header: header, meta: meta, route: route, tally: tally)
                    }
                } else {
                    self.report(record, outcome, file: file, header: header)
                }
                if let ticket { lanes.leave(ticket) }
                outcomes.append((record, outcome))
            }
            return .rows(number, outcomes)
        }
    }

    /// A row's key in an ordered source: its field in `column` (a header name, or a 1-based
    /// column number without a header); `nil` for a malformed row or one without that field,
    /// which then runs outside any lane.
    static func orderKey(of record: CSVReader.Record, column: String, header: [String]?) -> String? {
        guard record.problem == nil else { return nil }
        let index = header.map { $0.firstIndex(of: column) } ?? Int(column).map { $0 - 1 }
        guard let index, record.fields.indices.contains(index) else { return nil }
        return record.fields[index]
    }

    /// Holds `key`'s lane with a failed row (`onFailure: hold`): reports it, waits for its fate,
    /// and runs it again in place each time it is redriven. Rows after it in the file wait
    /// too (answers are written in file order), after at most `concurrency` rows more.
    /// - Returns: the row's outcome: its answer once a run succeeds; a reject naming the drop's
    ///   reason once it is dropped; interrupted when the source stops first.
    private func hold(
        _ record: CSVReader.Record, key: String, error: SkyError, file: String, header: [String]?, isStopping: @escaping @Sendable () -> Bool,
        rerun: () async -> Outcome
    ) async -> Outcome {
        let source = self.configuration.source
        let identity = FailedInput.Identity.stable("\(file):\(record.line)")
        var error = error
        while true {
            var details = ["file": file, "line": String(record.line), "orderKey": key, "hold": "true"]
            if let header { details["header"] = JSONWriter.string(.array(header.map(JSONValue.string))) }
            self.counters.add("\(self.prefix)-held")
            self.logger.warning("row failed; its lane is held until it is redriven or dropped", metadata: ["file": "\(file)", "line": "\(record.line)", "key": "\(key)"])
            self.failures.failed(FailedInput(
                route: self.configuration.route, source: .csv, resource: source.dir, identity: identity, input: record.truncated ? nil : record.raw,
                details: details, error: error
            ))
            switch await self.failures.decision(route: self.configuration.route, source: .csv, resource: source.dir, identity: identity, isStopping: isStopping) {
            case .runAgain:
                let outcome = await rerun()
                guard case .reject(_, let again?) = outcome else {
                    if case .result = outcome { self.failures.succeeded(route: self.configuration.route, source: .csv, resource: source.dir, identity: identity) }
                    return outcome
                }
                error = again
            case .dropped(let reason):
                return .reject("\(error.description) (dropped: \(reason))", nil)
            case .stopped:
                return .interrupted
            }
        }
    }

    /// Tells ``failures`` how a row went: a reject is reported with its row, file, line and
    /// header; an answer only matters when a redrive this node put back is waiting for it.
    private func report(_ record: CSVReader.Record, _ outcome: Outcome, file: String, header: [String]?) {
        let source = self.configuration.source
        switch outcome {
        case .reject(let reason, let error):
            var details = ["file": file, "line": String(record.line)]
            if let header { details["header"] = JSONWriter.string(.array(header.map(JSONValue.string))) }
            self.failures.failed(FailedInput(
                route: self.configuration.route, source: .csv, resource: source.dir, identity: .stable("\(file):\(record.line)"),
                input: record.truncated ? nil : record.raw, details: details, error: error ?? SkyError(.badRequest, reason)
            ))
        case .result:
            guard self.failures.redrivesInFlight else { return }
            self.failures.succeeded(route: self.configuration.route, source: .csv, resource: source.dir, identity: .stable("\(file):\(record.line)"))
        case .interrupted:
            break
        }
    }

    /// Why a header cannot name the rows' fields: malformed, or a column name used twice
    /// (an object keeps one value per name, so the others would be lost).
    static func headerProblem(_ record: CSVReader.Record) -> String? {
        if let problem = record.problem { return "the header on line \(record.line) is malformed: \(problem)" }
        var seen: [String: Int] = [:]
        for (index, name) in record.fields.enumerated() {
            if let first = seen[name] {
                return "the header on line \(record.line) names column '\(name)' more than once (columns \(first + 1) and \(index + 1)); rename the columns so no value is lost"
            }
            seen[name] = index
        }
        return nil
    }

    /// Runs an unordered batch's rows through the route as one unit of work
    /// (``RouteRunner/run(batch:on:shouldStop:)``: a route answered in this process runs them
    /// step by step, its counters added once), and reports each row's outcome.
    /// - Parameters:
    ///   - meta: the file's meta (`source`, `file`), to which each row's `line` is added.
    ///   - tally: the rows and rejects counters, added to once for the batch.
    private func runBatch(
        _ rows: [CSVReader.Record], header: [String]?, meta: [String: String], route: Route, file: String, tally: (rows: CounterCell, rejects: CounterCell),
        isStopping: @Sendable () -> Bool
    ) async -> [(CSVReader.Record, Outcome)] {
        // A stop before the batch starts leaves every row of it to run again, malformed ones
        // too (the file pauses before its first row).
        guard !isStopping() else { return rows.map { ($0, .interrupted) } }
        var outcomes: [(CSVReader.Record, Outcome)] = rows.map { ($0, .interrupted) }
        var requests: [RequestEnvelope] = []
        var positions: [Int] = []
        requests.reserveCapacity(rows.count)
        positions.reserveCapacity(rows.count)
        var rejects = 0
        for (index, record) in rows.enumerated() {
            switch self.request(for: record, header: header, meta: meta) {
            case .success(let request):
                requests.append(request)
                positions.append(index)
            case .failure(let reason):
                rejects += 1
                outcomes[index].1 = .reject(reason.message, nil)
            }
        }
        let results = await self.runner.run(batch: requests, on: route, shouldStop: isStopping)
        var answered = 0
        for (index, result) in zip(positions, results) {
            switch result {
            case nil:
                outcomes[index].1 = .interrupted
            case .success(let result)?:
                answered += 1
                outcomes[index].1 = .result(result.answerDocument)
            case .failure(let error)?:
                // A stop that outlasted the drain limit is not the row's failure.
                if Task.isCancelled {
                    outcomes[index].1 = .interrupted
                } else {
                    rejects += 1
                    outcomes[index].1 = .reject(error.description, error)
                }
            }
        }
        if answered > 0 { tally.rows.add(Int64(answered)) }
        if rejects > 0 { tally.rejects.add(Int64(rejects)) }
        for (record, outcome) in outcomes { self.report(record, outcome, file: file, header: header) }
        return outcomes
    }

    /// A row's request: its fields as the document (an object by the header's names, or an
    /// array without one) and its line in the meta; or why the row cannot be one.
    /// - Parameter meta: the file's meta (`source`, `file`), to which the row's `line` is added.
    private func request(for record: CSVReader.Record, header: [String]?, meta: [String: String]) -> Result<RequestEnvelope, RowRejected> {
        if let problem = record.problem {
            return .failure(RowRejected(message: "malformed row: \(problem)"))
        }
        let payload: JSONValue
        if let header {
            guard record.fields.count == header.count else {
                return .failure(RowRejected(message: "row has \(record.fields.count) fields, the header has \(header.count)"))
            }
            // The header has no repeated names (checked when it was read). Filled in place: a
            // mapped array of values first was one more allocation per row.
            var fields = [String: JSONValue](minimumCapacity: header.count)
            for (name, value) in zip(header, record.fields) { fields[name] = .string(value) }
            payload = .object(fields)
        } else {
            payload = .array(record.fields.map(JSONValue.string))
        }
        var rowMeta = meta
        rowMeta["line"] = String(record.line)
        return .success(RequestEnvelope(route: self.configuration.route, payload: payload, meta: rowMeta, trace: self.runner.sampler.root()))
    }

    /// Why a row is not a request (malformed, or not the header's width): the reason
    /// `rejects.csv` gives.
    struct RowRejected: Error {
        let message: String
    }

    /// Runs one row through the route.
    /// - Parameters:
    ///   - meta: the file's meta (`source`, `file`), to which the row's `line` is added.
    ///   - tally: the rows and rejects counters, looked up once per file (a lookup by name per
    ///     row showed in the profile).
    ///   - route: the route as the batch found it; `nil` when there was none (the runner then
    ///     says so, and the row is rejected with that error).
    private func run(_ record: CSVReader.Record, header: [String]?, meta: [String: String], route: Route?, tally: (rows: CounterCell, rejects: CounterCell)) async -> Outcome {
        let request: RequestEnvelope
        switch self.request(for: record, header: header, meta: meta) {
        case .success(let made): request = made
        case .failure(let reason):
            tally.rejects.add()
            return .reject(reason.message, nil)
        }
        do throws(SkyError) {
            let result: RouteResult
            if let route {
                result = try await self.runner.run(request, on: route)
            } else {
                result = try await self.runner.run(request)
            }
            tally.rows.add()
            return .result(result.answerDocument)
        } catch {
            // A stop that outlasted the drain limit is not the row's failure.
            if Task.isCancelled { return .interrupted }
            tally.rejects.add()
            return .reject(error.description, error)
        }
    }
}
