/// Puts a CSV file's batches of answered rows back in input order, whatever finishes first,
/// and writes them to the file's outputs, keeping the place they reach (the next checkpoint).
///
/// At most `concurrency` batches are out at once, running or finished and waiting for an
/// earlier one: the buffer is bounded by configuration, not by how slow the earliest row is. A
/// row cut short by a stop (``CSVInitiator/Outcome/interrupted``) ends the writing: nothing
/// from it on is written, so the file resumes there.
struct ReorderBuffer {
    /// Batches that finished before an earlier one, by number.
    private var pending: [Int: [(CSVReader.Record, CSVInitiator.Outcome)]] = [:]
    /// The number the next batch sent out gets.
    private var sequence = 0
    /// The number of the next batch to write.
    private var nextToWrite = 0
    /// Where the rows written so far reach: the checkpoint to write next.
    var committed: CSVCheckpoint
    /// Rows written since the last checkpoint was started.
    var rowsSinceCheckpoint = 0
    /// Rows written in all (this run of the file).
    private(set) var rowsDone = 0
    /// Whether a row was cut short by a stop (nothing after it is written).
    private(set) var interrupted = false

    /// An empty buffer whose rows continue from `checkpoint`.
    init(from checkpoint: CSVCheckpoint) {
        self.committed = checkpoint
    }

    /// Batches sent out and not yet written.
    var outstanding: Int { self.sequence - self.nextToWrite }

    /// Numbers the next batch sent out.
    mutating func numberNext() -> Int {
        defer { self.sequence += 1 }
        return self.sequence
    }

    /// Takes batch `number`'s rows and writes every batch now in order to `output`.
    mutating func add(_ number: Int, _ rows: [(CSVReader.Record, CSVInitiator.Outcome)], to output: CSVOutput) {
        self.pending[number] = rows
        while !self.interrupted, let rows = self.pending.removeValue(forKey: self.nextToWrite) {
            for (record, outcome) in rows {
                if case .interrupted = outcome {
                    self.interrupted = true
                    break
                }
                output.append(record: record, outcome: outcome)
                self.committed.offset = record.endOffset
                self.committed.line = record.nextLine
                self.rowsSinceCheckpoint += 1
                self.rowsDone += 1
            }
            self.nextToWrite += 1
        }
    }
}
