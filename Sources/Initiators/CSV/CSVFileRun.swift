import Foundation
import Logging
import SkyLib
import RouteModel

/// One claimed CSV file being run: what ``CSVInitiator/process(_:in:isStopping:)`` keeps
/// between its reads, batches and checkpoints, and the steps it takes on them. The loop that
/// reads and starts batches stays in the initiator, which owns the task group; each decision
/// it makes on the way (take the header, start a checkpoint, pause, log progress, close the
/// file) is one method here.
struct CSVFileRun {
    /// The file's name, for logs.
    let stem: String
    /// Its outputs (answers, rejects, checkpoint).
    let output: CSVOutput
    /// Where this run started: its checkpoint when it was claimed.
    let start: CSVCheckpoint
    /// The records, a chunk at a time.
    var reader: CSVFileReader
    /// Makes answered rows and their checkpoint durable, one write at a time.
    var writer: CheckpointWriter
    /// Puts batches' answers back in input order and keeps the place they reach.
    var order: ReorderBuffer
    /// The file's entry on the progress board (`/debug/progress`, `sky progress`).
    let progress: ProgressBoard.Entry
    /// How the file ends, unless the reading decides otherwise.
    var outcome = CSVInitiator.FileOutcome.finished
    /// Rows read but not yet handed to a task: a batch fills across chunks.
    private(set) var batch: [CSVReader.Record] = []
    /// When the run started and when progress was last logged.
    private var progressLog = (started: ContinuousClock.now, last: ContinuousClock.now)

    /// A run of `output`'s file from its checkpoint.
    init(stem: String, output: CSVOutput, reader: CSVFileReader, writer: CheckpointWriter, progress: ProgressBoard.Entry) {
        self.stem = stem
        self.output = output
        self.start = output.checkpoint
        self.reader = reader
        self.writer = writer
        self.order = ReorderBuffer(from: output.checkpoint)
        self.progress = progress
    }

    /// Takes in what a child task finished: a checkpoint write, or a batch's answers (which go
    /// to the outputs in input order, moving the progress bar).
    mutating func collect(_ finished: CSVInitiator.Finished) {
        switch finished {
        case .written(let written):
            self.writer.finished(written: written)
        case .rows(let number, let rows):
            self.order.add(number, rows, to: self.output)
            self.progress.done(Int64(self.order.rowsDone))
            self.progress.bytesDone(self.order.committed.offset)
        }
    }

    /// Fills the batch from `records`, starting at `index`, up to `size` rows; the header, when
    /// the source has one and it has not been read, is taken off first and recorded in the
    /// place kept (a resumed run must not read it as a row).
    /// - Returns: `false` when the header cannot name the rows (the outcome says why).
    mutating func fillBatch(from records: [CSVReader.Record], at index: inout Int, size: Int) -> Bool {
        while index < records.count && self.batch.count < size {
            let record = records[index]
            index += 1
            if self.reader.wantsHeader {
                if let problem = self.reader.takeHeader(record) {
                    self.outcome = .failed(code: "bad_header", reason: problem)
                    return false
                }
                self.order.committed.header = record.fields
                self.order.committed.offset = record.endOffset
                self.order.committed.line = record.nextLine
                continue
            }
            self.batch.append(record)
        }
        return true
    }

    /// The batch, numbered for the reorder buffer; the batch starts empty again.
    mutating func takeBatch() -> (number: Int, rows: [CSVReader.Record]) {
        let rows = self.batch
        self.batch.removeAll(keepingCapacity: true)
        return (self.order.numberNext(), rows)
    }

    /// Starts a checkpoint write when `rows` rows have been answered since the last one and no
    /// write is in flight: answers are made durable in groups while the next rows run.
    mutating func checkpointIfDue(every rows: Int, in group: inout TaskGroup<CSVInitiator.Finished>, shouldStop: @escaping @Sendable () -> Bool) {
        guard self.order.rowsSinceCheckpoint >= rows && !self.writer.writing else { return }
        let (buffered, snapshot, output) = (self.output.takeBuffered(), self.order.committed, self.output)
        self.writer.started()
        self.order.rowsSinceCheckpoint = 0
        group.addTask { [writer] in .written(await writer.write(buffered, checkpoint: snapshot, to: output, shouldStop: shouldStop)) }
    }

    /// Whether reading stops here because of a stop, or rows cut short by one; the file then
    /// pauses (the checkpoint keeps its place) rather than finishing.
    mutating func pausesHere(isStopping: () -> Bool) -> Bool {
        guard isStopping() || self.order.interrupted else { return false }
        self.outcome = .paused
        return true
    }

    /// One line every `interval`: rows done, their pace, and how far into the file.
    mutating func logProgressIfDue(every interval: Duration, logger: Logger) {
        guard ContinuousClock.now - self.progressLog.last >= interval else { return }
        self.progressLog.last = ContinuousClock.now
        let seconds = Double((ContinuousClock.now - self.progressLog.started).components.seconds) + 0.001
        logger.info(
            "progress: \(self.order.rowsDone) rows, \(Int(Double(self.order.rowsDone) / seconds)) rows/s, byte \(self.order.committed.offset) of \(self.reader.totalBytes)",
            metadata: ["file": "\(self.stem)"]
        )
    }

    /// After the last batch: writes what is left with its checkpoint, closes the outputs, and
    /// answers how the file ended.
    ///
    /// After a checkpoint that was not written, later rows must not be: they would follow a gap,
    /// so the last checkpoint on disk resumes the file. Rows cut short make the file paused, not
    /// finished nor failed (a read error past them is met again when it resumes).
    mutating func finish(bytes: CounterCell, logger: Logger, shouldStop: @escaping @Sendable () -> Bool) async -> CSVInitiator.FileOutcome {
        if self.order.interrupted { self.outcome = .paused }
        let flushed =
            self.writer.stopped
            ? false : await self.writer.write(self.output.takeBuffered(), checkpoint: self.order.committed, to: self.output, shouldStop: shouldStop)
        do {
            try self.output.close()
        } catch {
            logger.warning("cannot close the outputs (they were synced)", metadata: ["file": "\(self.stem)", "error": "\(error)"])
        }
        guard flushed else { return .paused }
        bytes.add(self.order.committed.offset - self.start.offset)
        switch self.outcome {
        case .finished: logger.info("file done: \(self.order.rowsDone) rows", metadata: ["file": "\(self.stem)"])
        case .paused: logger.info("file paused: \(self.order.rowsDone) rows", metadata: ["file": "\(self.stem)"])
        case .failed: break
        }
        return self.outcome
    }
}
