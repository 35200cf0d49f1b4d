import Foundation
import SkyLib

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
        guard let offset = json["offset"]?.intValue, let line = json["line"]?.intValue else { return nil }
        self.offset = offset
        self.line = Int(line)
        self.header = json["header"]?.arrayValue?.compactMap(\.stringValue)
        self.resultsBytes = json["resultsBytes"]?.intValue ?? 0
        self.rejectsBytes = json["rejectsBytes"]?.intValue ?? 0
    }
}

/// The outputs of one CSV file: `.out/NAME.results.jsonl`, `.out/NAME.rejects.csv`, and the
/// checkpoint in `.processing/`. Rows are buffered and written at each flush; a resumed file
/// cuts the outputs back to the sizes its checkpoint recorded, so nothing is written twice.
///
/// `@unchecked Sendable`: used by one file's task at a time; flushes run on the thread pool
/// while that task waits.
final class CSVOutput: @unchecked Sendable {
    let checkpoint: CSVCheckpoint
    private let results: FileHandle
    private let rejects: FileHandle
    private let checkpointPath: String
    private var resultsBuffer: [UInt8] = []
    private var rejectsBuffer: [UInt8] = []
    private(set) var resultsBytes: Int64
    private(set) var rejectsBytes: Int64

    /// Opens the outputs, resuming from the checkpoint when there is one (blocking I/O).
    init(folder: DropFolder, stem: String) throws {
        self.checkpointPath = folder.processing + "/" + stem + ".checkpoint"
        var checkpoint = CSVCheckpoint()
        if let data = FileManager.default.contents(atPath: self.checkpointPath), let json = try? JSONParser.parse(data),
            let saved = CSVCheckpoint(json: json)
        {
            checkpoint = saved
        }
        self.checkpoint = checkpoint
        self.results = try Self.open(folder.out + "/" + stem + ".results.jsonl", size: checkpoint.resultsBytes)
        self.rejects = try Self.open(folder.out + "/" + stem + ".rejects.csv", size: checkpoint.rejectsBytes)
        self.resultsBytes = checkpoint.resultsBytes
        self.rejectsBytes = checkpoint.rejectsBytes
        if self.rejectsBytes == 0 {
            self.rejectsBuffer.append(contentsOf: "line,error,row\n".utf8)
            self.rejectsBytes = Int64(self.rejectsBuffer.count)
        }
    }

    /// Opens `path` for appending, cut back to `size` bytes.
    private static func open(_ path: String, size: Int64) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
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
            let before = self.resultsBuffer.count
            JSONWriter.append(["line": .int(Int64(record.line)), "result": document], to: &self.resultsBuffer)
            self.resultsBuffer.append(UInt8(ascii: "\n"))
            self.resultsBytes += Int64(self.resultsBuffer.count - before)
        case .reject(let reason):
            let before = self.rejectsBuffer.count
            self.rejectsBuffer.append(contentsOf: "\(record.line),".utf8)
            Self.appendField(Array(reason.utf8), to: &self.rejectsBuffer)
            self.rejectsBuffer.append(UInt8(ascii: ","))
            Self.appendField(record.raw, to: &self.rejectsBuffer)
            self.rejectsBuffer.append(UInt8(ascii: "\n"))
            self.rejectsBytes += Int64(self.rejectsBuffer.count - before)
        }
    }

    /// A CSV field, always quoted, inner quotes doubled.
    private static func appendField(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { buffer.append(byte) }
            buffer.append(byte)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Writes buffered rows, syncs them, then records `checkpoint` (blocking I/O). The
    /// checkpoint is written only after the rows it counts are on disk.
    func flush(checkpoint: CSVCheckpoint) throws {
        if !self.resultsBuffer.isEmpty {
            try self.results.write(contentsOf: self.resultsBuffer)
            self.resultsBuffer.removeAll(keepingCapacity: true)
        }
        if !self.rejectsBuffer.isEmpty {
            try self.rejects.write(contentsOf: self.rejectsBuffer)
            self.rejectsBuffer.removeAll(keepingCapacity: true)
        }
        try self.results.synchronize()
        try self.rejects.synchronize()
        let temporary = self.checkpointPath + ".tmp"
        try Data(JSONWriter.string(checkpoint.json).utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, self.checkpointPath) == 0 else { throw DropFolderError(path: self.checkpointPath, reason: "cannot write checkpoint") }
    }

    func close() {
        try? self.results.close()
        try? self.rejects.close()
    }
}
