import Foundation
import NIOPosix
import SkyLib
import RouteModel

/// Reads one claimed CSV file from where its checkpoint left it, a chunk at a time on the
/// thread pool, into records (``CSVReader``), taking the header off the front when the source
/// has one. Every record of a chunk is decoded before its rows go out, so the chunk size bounds
/// the records held at once.
struct CSVFileReader {
    /// Why reading stopped before the end of the file, naming the place.
    struct ReadError: Error {
        var reason: String
    }

    /// The record decoder, carried across chunks.
    private var reader: CSVReader
    /// The file, positioned at the checkpoint when resuming.
    private let input: FileHandle
    /// Whether the file's first record names the fields.
    private let expectsHeader: Bool
    /// The header, once read (from the file, or from the checkpoint when resuming).
    private(set) var header: [String]?
    /// The file's size when it was opened.
    let totalBytes: Int64
    /// Bytes asked of the file at a time.
    private let readSize: Int
    /// Called before each read with the offset reached (tests stand in a read error there).
    private let beforeRead: (@Sendable (Int64) throws -> Void)?

    /// A reader over `input`; `header` is the checkpoint's, when resuming past it.
    /// Where reads run (the node's pool).
    private let threadPool: NIOThreadPool

    init(
        reader: CSVReader, input: FileHandle, header: [String]?, expectsHeader: Bool, totalBytes: Int64, readSize: Int, beforeRead: (@Sendable (Int64) throws -> Void)?,
        threadPool: NIOThreadPool
    ) {
        self.threadPool = threadPool
        self.reader = reader
        self.input = input
        self.header = header
        self.expectsHeader = expectsHeader
        self.totalBytes = totalBytes
        self.readSize = readSize
        self.beforeRead = beforeRead
    }

    /// Whether the next record is the header (the source has one and it was not read yet).
    var wantsHeader: Bool { self.expectsHeader && self.header == nil }

    /// Reads the next chunk and answers the records it completes (all that are left, at the end
    /// of the file) and whether the file has ended.
    /// - Throws: ``ReadError`` naming the line and byte where reading stopped.
    mutating func next() async throws(ReadError) -> (records: [CSVReader.Record], ended: Bool) {
        let chunk: Data
        do {
            let offset = self.reader.position
            let (input, readSize, beforeRead) = (self.input, self.readSize, self.beforeRead)
            chunk = try await self.threadPool.runIfActive {
                try beforeRead?(offset)
                return try input.read(upToCount: readSize) ?? Data()
            }
        } catch {
            throw ReadError(reason: "reading stopped at line \(self.reader.currentLine), byte \(self.reader.position) of \(self.totalBytes): \(error)")
        }
        var records: [CSVReader.Record] = []
        if chunk.isEmpty {
            self.reader.finish(into: &records)
        } else {
            self.reader.feed(chunk, into: &records)
        }
        return (records, chunk.isEmpty)
    }

    /// Takes `record` as the header.
    /// - Returns: why it cannot name the fields (``CSVInitiator/headerProblem(_:)``), or `nil`.
    mutating func takeHeader(_ record: CSVReader.Record) -> String? {
        if let problem = CSVInitiator.headerProblem(record) { return problem }
        self.header = record.fields
        return nil
    }
}
