import Foundation
import SkyLib
import RouteModel

/// Where a CSV file's place is kept between batches.
struct CSVCheckpoint: Sendable, Equatable {
    /// Byte offset of the first row not yet committed.
    var offset: Int64 = 0
    /// Its line.
    var line: Int = 1
    /// The header, once read.
    var header: [String]?
    /// Sizes of the outputs when the checkpoint was taken.
    var resultsBytes: Int64 = 0
    var rejectsBytes: Int64 = 0

    var json: JSONValue {
        var fields: [String: JSONValue] = [
            "offset": .int(self.offset), "line": .int(Int64(self.line)),
            "resultsBytes": .int(self.resultsBytes), "rejectsBytes": .int(self.rejectsBytes),
        ]
        if let header { fields["header"] = .array(header.map(JSONValue.string)) }
        return .object(fields)
    }

    init() {}

    init?(json: JSONValue) {
        guard let offset = json["offset"]?.intValue, let line = json["line"]?.intValue, offset >= 0, line >= 1,
            let resultsBytes = json["resultsBytes"]?.intValue, let rejectsBytes = json["rejectsBytes"]?.intValue
        else { return nil }
        self.offset = offset
        self.line = Int(line)
        if let header = json["header"] {
            guard let fields = header.arrayValue?.compactMap(\.stringValue), fields.count == header.arrayValue?.count else { return nil }
            self.header = fields
        }
        self.resultsBytes = resultsBytes
        self.rejectsBytes = rejectsBytes
    }
}

/// A checkpoint that exists but cannot be read. Starting the file again would answer its
/// rows a second time, so the file is parked instead, naming the checkpoint.
struct CSVCheckpointError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String {
        "\(self.path): checkpoint cannot be read (\(self.reason)); the file was not started again, so no row runs twice. To start it over, remove the checkpoint and the file's outputs in .out/, and drop the file again"
    }
}

/// The outputs of one CSV file: `.out/NAME.results.jsonl`, `.out/NAME.rejects.csv`, and the
/// checkpoint in `.processing/`. Rows are buffered and written at each checkpoint; a resumed
/// file cuts the outputs back to the sizes its checkpoint recorded, so nothing is written twice.
///
/// `@unchecked Sendable`: the buffers are used by one file's task only (``append`` and
/// ``takeBuffered()``); the files and committed sizes by one ``write(_:checkpoint:)`` at a
/// time on the thread pool (the file's task starts a write only after the previous one ended).
final class CSVOutput: @unchecked Sendable {
    /// Where the file resumes: the checkpoint found at open, or the start.
    let checkpoint: CSVCheckpoint
    /// `.out/NAME.results.jsonl` and `.out/NAME.rejects.csv`, cut back at open to the sizes the
    /// checkpoint recorded (what was written after it runs again, so it must not stay twice).
    private let results: FileHandle
    private let rejects: FileHandle
    /// `.processing/NAME.checkpoint`, replaced atomically at each checkpoint.
    private let checkpointPath: String
    /// The input, for copying rejected records too long to have been held.
    private let inputPath: String
    /// The drop folder and the file's stem, for paths and messages.
    private let folder: DropFolder
    private let stem: String
    /// Answers and rejects since the last checkpoint, written at the next one: one write and one
    /// sync per checkpoint, not per row.
    private var resultsBuffer: [UInt8] = []
    private var rejectsBuffer: [UInt8] = []
    /// Rejected records too long to hold in memory, copied from the input at the flush:
    /// (where in `rejectsBuffer` they go, their byte range in the input).
    private var copies: [(at: Int, start: Int64, end: Int64)] = []
    /// Output sizes after the last good flush.
    private var resultsCommitted: UInt64
    private var rejectsCommitted: UInt64

    /// Opens the outputs, resuming from the checkpoint when there is one (blocking I/O).
    init(folder: DropFolder, stem: String) throws {
        self.folder = folder
        self.stem = stem
        self.checkpointPath = folder.processing + "/" + stem + ".checkpoint"
        self.inputPath = folder.processing + "/" + stem
        var checkpoint = CSVCheckpoint()
        if FileManager.default.fileExists(atPath: self.checkpointPath) {
            guard let data = FileManager.default.contents(atPath: self.checkpointPath) else {
                throw CSVCheckpointError(path: self.checkpointPath, reason: "cannot read it")
            }
            let json: JSONValue
            do {
                json = try JSONParser.parse(data)
            } catch {
                throw CSVCheckpointError(path: self.checkpointPath, reason: "not JSON: \(error)")
            }
            guard let saved = CSVCheckpoint(json: json) else {
                throw CSVCheckpointError(path: self.checkpointPath, reason: "missing or invalid offset, line, resultsBytes or rejectsBytes")
            }
            checkpoint = saved
        }
        self.checkpoint = checkpoint
        self.results = try Self.open(folder.out + "/" + stem + ".results.jsonl", size: checkpoint.resultsBytes)
        self.rejects = try Self.open(folder.out + "/" + stem + ".rejects.csv", size: checkpoint.rejectsBytes)
        self.resultsCommitted = UInt64(checkpoint.resultsBytes)
        self.rejectsCommitted = UInt64(checkpoint.rejectsBytes)
        if checkpoint.rejectsBytes == 0 {
            self.rejectsBuffer.append(contentsOf: "line,error,row\n".utf8)
        }
    }

    /// Opens `path` for appending, cut back to `size` bytes.
    private static func open(_ path: String, size: Int64) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw DropFolderError(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw DropFolderError(path: path, reason: "cannot open for writing")
        }
        try handle.truncate(atOffset: UInt64(size))
        try handle.seekToEnd()
        return handle
    }

    /// Buffers one row's outcome, in input order.
    func append(record: CSVReader.Record, outcome: CSVInitiator.Outcome) {
        switch outcome {
        case .result(let document):
            // `{"line":N,"result":…}` written straight out (the same bytes JSONWriter makes of
            // that object, keys in order): a dictionary per row just to wrap the answer cost an
            // allocation and a sort.
            self.resultsBuffer.append(contentsOf: #"{"line":"#.utf8)
            self.resultsBuffer.append(contentsOf: String(record.line).utf8)
            self.resultsBuffer.append(contentsOf: #","result":"#.utf8)
            JSONWriter.append(document, to: &self.resultsBuffer)
            self.resultsBuffer.append(contentsOf: "}\n".utf8)
        case .reject(let reason, _):
            self.rejectsBuffer.append(contentsOf: "\(record.line),".utf8)
            Self.appendField(Array(reason.utf8), to: &self.rejectsBuffer)
            self.rejectsBuffer.append(UInt8(ascii: ","))
            if record.truncated {
                // Kept as it was: the whole record, copied from the file at the flush.
                self.rejectsBuffer.append(UInt8(ascii: "\""))
                self.copies.append((self.rejectsBuffer.count, record.startOffset, record.contentEndOffset))
                self.rejectsBuffer.append(UInt8(ascii: "\""))
            } else {
                Self.appendField(record.raw, to: &self.rejectsBuffer)
            }
            self.rejectsBuffer.append(UInt8(ascii: "\n"))
        case .interrupted:
            break  // never written: the file stops before it
        }
    }

    /// A CSV field, always quoted, inner quotes doubled.
    private static func appendField(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        Self.appendEscaped(bytes, to: &buffer)
        buffer.append(UInt8(ascii: "\""))
    }

    /// Appends bytes with every quote doubled (the inside of a quoted CSV field).
    private static func appendEscaped<Bytes: Sequence<UInt8>>(_ bytes: Bytes, to buffer: inout [UInt8]) {
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { buffer.append(byte) }
            buffer.append(byte)
        }
    }

    /// Rows buffered since the last ``takeBuffered()``, ready to be written by ``write(_:checkpoint:)``.
    struct Buffered: Sendable {
        var results: [UInt8]
        var rejects: [UInt8]
        var copies: [(at: Int, start: Int64, end: Int64)]
    }

    /// Hands over the rows buffered so far and starts new buffers, so rows can go on being
    /// appended while the handed-over ones are written on the thread pool.
    func takeBuffered() -> Buffered {
        defer {
            self.resultsBuffer = []
            self.resultsBuffer.reserveCapacity(64 * 1024)
            self.rejectsBuffer = []
            self.copies = []
        }
        return Buffered(results: self.resultsBuffer, rejects: self.rejectsBuffer, copies: self.copies)
    }

    /// Writes `rows`, syncs them, then records `checkpoint` with the outputs' sizes (blocking
    /// I/O). The checkpoint is written only after the rows it counts are on disk. When
    /// anything fails, calling it again with the same rows first cuts the outputs back to the
    /// last good write, so each row is written once however often it is retried.
    ///
    /// Touches only the files and the committed sizes, never the buffers: it may run on the
    /// thread pool while the file's task appends the next rows.
    func write(_ rows: Buffered, checkpoint: CSVCheckpoint) throws {
        try self.results.truncate(atOffset: self.resultsCommitted)
        try self.results.seek(toOffset: self.resultsCommitted)
        try self.rejects.truncate(atOffset: self.rejectsCommitted)
        try self.rejects.seek(toOffset: self.rejectsCommitted)
        if !rows.results.isEmpty {
            try self.results.write(contentsOf: rows.results)
            try self.results.synchronize()
        }
        if !rows.rejects.isEmpty {
            try self.writeRejects(rows)
            // Most files have few rejects: no sync (a disk round trip) for an unchanged file.
            try self.rejects.synchronize()
        }
        let resultsSize = try self.results.offset()
        let rejectsSize = try self.rejects.offset()
        var checkpoint = checkpoint
        checkpoint.resultsBytes = Int64(resultsSize)
        checkpoint.rejectsBytes = Int64(rejectsSize)
        // Synced too: a checkpoint garbled by a crash could not be read, and the file would be
        // parked instead of resumed.
        try self.folder.writeAtomically(
            Data(JSONWriter.string(checkpoint.json).utf8), to: self.folder.processing, name: self.stem + ".checkpoint", durable: true,
            temporaryName: self.stem + ".checkpoint.tmp"
        )
        self.resultsCommitted = resultsSize
        self.rejectsCommitted = rejectsSize
    }

    /// Writes the rejects of `rows`, splicing in over-long records copied from the input.
    private func writeRejects(_ rows: Buffered) throws {
        var written = 0
        if !rows.copies.isEmpty {
            guard let input = FileHandle(forReadingAtPath: self.inputPath) else {
                throw DropFolderError(path: self.inputPath, reason: "cannot open to copy a rejected row")
            }
            defer { try? input.close() }  // read-only: a close error loses nothing
            for copy in rows.copies {
                try self.rejects.write(contentsOf: rows.rejects[written..<copy.at])
                written = copy.at
                try input.seek(toOffset: UInt64(copy.start))
                var remaining = copy.end - copy.start
                var escaped: [UInt8] = []
                while remaining > 0 {
                    guard let chunk = try input.read(upToCount: Int(min(remaining, 256 * 1024))), !chunk.isEmpty else {
                        throw DropFolderError(path: self.inputPath, reason: "ended before a rejected row could be copied")
                    }
                    remaining -= Int64(chunk.count)
                    escaped.removeAll(keepingCapacity: true)
                    Self.appendEscaped(chunk, to: &escaped)
                    try self.rejects.write(contentsOf: escaped)
                }
            }
        }
        if written < rows.rejects.count { try self.rejects.write(contentsOf: rows.rejects[written...]) }
    }

    /// Closes the outputs. A close error after a successful flush loses nothing (the data
    /// was synced), so it is only logged by the caller.
    func close() throws {
        try self.results.close()
        try self.rejects.close()
    }
}
