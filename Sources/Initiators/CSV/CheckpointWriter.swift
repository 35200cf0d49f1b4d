import Logging
import SkyLib
import RouteModel

/// Writes a CSV file's checkpoints (the rows answered since the last one, then the checkpoint,
/// each synced) as a group commit: at most one is being written, on the thread pool, while the
/// next rows run; the rows answered meanwhile go into the next one, which starts as soon as it
/// is done. A slow disk makes checkpoints larger, not the rows slower; reading waits only once
/// `unsyncedRowsLimit` answered rows wait for the disk. A checkpoint that cannot be written is
/// retried with back-off; one given up at a stop ends the file's progress there (later rows
/// must not follow a gap).
struct CheckpointWriter: Sendable {
    /// Retries a failed write, logging the episode once.
    let retry: BackoffRetry
    /// Counts the checkpoints written.
    let written: CounterCell
    /// The file, for messages.
    let file: String

    /// Whether one is being written now.
    private(set) var writing = false
    /// Whether one was given up (stopped before it could be written).
    private(set) var stopped = false

    /// A writer with nothing written yet.
    init(retry: BackoffRetry, written: CounterCell, file: String) {
        self.retry = retry
        self.written = written
        self.file = file
    }

    /// Marks a write as started (at most one at a time).
    mutating func started() {
        self.writing = true
    }

    /// Notes how the write in progress ended.
    mutating func finished(written: Bool) {
        self.writing = false
        if !written { self.stopped = true }
    }

    /// Writes `rows` and then `checkpoint` (blocking work on the thread pool), retrying with
    /// back-off until it is written or `shouldStop` says to give up.
    /// - Returns: whether it was written.
    func write(_ rows: CSVOutput.Buffered, checkpoint: CSVCheckpoint, to output: CSVOutput, shouldStop: @escaping @Sendable () -> Bool) async -> Bool {
        let written = await self.retry.run("cannot write the checkpoint; the file is paused and retried with backoff", file: self.file, shouldStop: shouldStop) {
            try output.write(rows, checkpoint: checkpoint)
        }
        if written { self.written.add() }
        return written
    }
}
