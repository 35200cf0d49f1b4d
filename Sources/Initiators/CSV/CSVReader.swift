/// A streaming, byte-level RFC 4180 reader: feed it chunks of a file, take complete records.
///
/// Quoted fields with `""` escapes and embedded newlines, `\n`, `\r\n` and lone `\r` line ends,
/// and a UTF-8 byte-order mark are handled. It is strict where RFC 4180 is: a quote inside an
/// unquoted field, text after a closing quote, or a quote left open at the end of the input
/// make that record malformed (it is still returned, with its raw text and the reason, so the
/// caller can reject it and go on). Bytes that are not valid in the declared encoding make the
/// record malformed too, instead of being replaced. Memory holds one record of at most
/// `maxRecordBytes` at a time, whatever the file or record size: a longer record is reported
/// with its byte range, so the caller can copy it whole from the file.
///
/// Line numbers count line ends as Python's `csv` module does (`\n`, `\r\n` and a lone `\r`,
/// inside quoted fields too).
///
/// Written because the CSV packages available read whole files into memory or were measured
/// too slow for a million rows (DESIGN.md); it is tested against Python's `csv` module.
public struct CSVReader: Sendable {
    /// One record and where it was.
    public struct Record: Sendable, Equatable {
        /// The fields, decoded.
        public var fields: [String]
        /// The record's bytes as they were in the file, without the line end; only the first
        /// `maxRecordBytes` when `truncated`.
        public var raw: [UInt8]
        /// 1-based line the record starts on.
        public var line: Int
        /// Byte offset of the record's first byte.
        public var startOffset: Int64
        /// Byte offset just past the record (and its line end).
        public var endOffset: Int64
        /// Byte offset just past the record's own bytes (before its line end).
        public var contentEndOffset: Int64
        /// Line the next record starts on.
        public var nextLine: Int
        /// Why the record is malformed, or `nil`.
        public var problem: String?
        /// Whether the record was longer than `maxRecordBytes` (`raw` holds only its start).
        public var truncated: Bool
    }

    /// How field bytes become text.
    public enum Encoding: String, Sendable, CaseIterable {
        /// Bytes must be valid UTF-8; a record with invalid bytes is malformed.
        case utf8 = "utf-8"
        /// ISO-8859-1: every byte is the code point of the same number (never invalid).
        case latin1 = "latin1"
    }

    /// Where in a record the reader is: RFC 4180's few states, one byte at a time, so a record
    /// split across two reads resumes exactly where it stopped.
    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted, afterCR
    }

    /// The field separator, one byte.
    public let delimiter: UInt8
    /// Longest record accepted, line end not counted; a longer one is reported malformed.
    public let maxRecordBytes: Int
    /// How bytes become text.
    public let encoding: Encoding
    private var state = State.fieldStart
    /// The field being read, as bytes: decoded once it ends (one decode per field, not per byte).
    private var field: [UInt8] = []
    /// The record's fields so far.
    private var fields: [String] = []
    /// The record's bytes as they were in the file (for a reject, kept byte for byte), up to the
    /// size limit.
    private var raw: [UInt8] = []
    /// The record's length so far, also past the limit (what was not kept is copied from the file
    /// when the reject is written).
    private var rawCount = 0
    /// What is wrong with the record so far, when something is: it is still read to its end, so the
    /// next record starts in the right place.
    private var problem: String?
    /// Bytes consumed from the file (where a checkpoint may resume).
    private var offset: Int64
    /// The line the reader is on (quoted newlines counted, as Python's csv counts them).
    private var line: Int
    /// The line the record began on, for its answer and its reject.
    private var recordLine: Int
    /// Where the record starts in the file.
    private var recordStart: Int64
    /// Where its content ends (its line end not counted): a reject copies the range whole.
    private var contentEnd: Int64
    /// Whether nothing was read yet: a UTF-8 byte-order mark is skipped only there.
    private var atStart: Bool
    private var bomChecked = false
    /// The previous byte was a `\r` inside a quoted field (a `\n` after it ends no extra line).
    private var quotedCR = false
    /// A record ended by `\r`, held until the next byte tells whether a `\n` (part of its line
    /// end) follows, so its end offset is right even across chunks.
    private var held: [Record] = []

    /// - Parameters:
    ///   - offset: byte offset of the first byte that will be fed (to resume mid-file).
    ///   - line: line number at that offset.
    public init(delimiter: UInt8 = UInt8(ascii: ","), maxRecordBytes: Int = 1 << 20, encoding: Encoding = .utf8, offset: Int64 = 0, line: Int = 1) {
        self.delimiter = delimiter
        self.maxRecordBytes = maxRecordBytes
        self.encoding = encoding
        self.offset = offset
        self.line = line
        self.recordLine = line
        self.recordStart = offset
        self.contentEnd = offset
        self.atStart = offset == 0
    }

    /// Bytes consumed so far, as a file offset.
    public var position: Int64 { self.offset }
    /// The line the reader is on.
    public var currentLine: Int { self.line }

    /// Consumes `bytes` and appends every record they complete to `records`.
    public mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes, into records: inout [Record]) {
        var skip = 0
        if self.atStart && !self.bomChecked {
            // A UTF-8 byte-order mark at the very start is not data. Feeding byte by byte
            // across the BOM is rare enough to ignore; whole chunks are the norm.
            self.bomChecked = true
            if bytes.count >= 3, Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF] {
                skip = 3
                self.offset += 3
                self.recordStart = 3
            }
        }
        // Straight over the bytes when they are contiguous (Data, arrays): Data's iterator
        // cost more than the parsing in the CSV initiator's profile.
        let contiguous: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            var index = skip
            while index < buffer.count {
                let run = self.plainRun(in: buffer, from: index)
                if run > index {
                    self.keepRun(buffer[index..<run])
                    index = run
                    continue
                }
                self.offset += 1
                self.step(buffer[index], into: &records)
                index += 1
            }
        }
        guard contiguous == nil else { return }
        for byte in bytes.dropFirst(skip) {
            self.offset += 1
            self.step(byte, into: &records)
        }
    }

    /// Where the run of plain bytes at `start` ends: bytes that, in the current state, only
    /// join the field (no delimiter, quote or line end), so they can be taken together instead
    /// of one `step` each. Byte by byte was most of the reader's cost in the CSV profile. The
    /// run stops short of the record size limit, where `step` takes over to report it.
    /// - Returns: `start` when there is no such run here.
    private func plainRun(in buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let inQuotes: Bool
        switch self.state {
        case .fieldStart, .unquoted: inQuotes = false
        case .quoted: inQuotes = true
        case .quoteInQuoted, .afterCR: return start
        }
        let room = self.maxRecordBytes - self.rawCount
        guard room > 0 else { return start }
        let end = min(buffer.count, start + room)
        let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), carriage = UInt8(ascii: "\r")
        var index = start
        while index < end {
            let byte = buffer[index]
            if byte == quote || byte == newline || byte == carriage || (!inQuotes && byte == self.delimiter) { break }
            index += 1
        }
        return index
    }

    /// Takes a run from ``plainRun(in:from:)``: what `step` does for each of its bytes, at once.
    private mutating func keepRun(_ run: Slice<UnsafeBufferPointer<UInt8>>) {
        self.offset += Int64(run.count)
        self.rawCount += run.count
        self.raw.append(contentsOf: run)
        self.field.append(contentsOf: run)
        if self.state == .fieldStart { self.state = .unquoted }
        // A run in quotes holds no \r: a \n after it is a line of its own.
        self.quotedCR = false
    }

    /// Ends the input: a last record without a line end is completed.
    public mutating func finish(into records: inout [Record]) {
        records.append(contentsOf: self.held)
        self.held.removeAll()
        switch self.state {
        case .fieldStart where self.fields.isEmpty && self.rawCount == 0:
            return
        case .afterCR:
            return
        case .quoted:
            self.problem = self.problem ?? "quoted field not closed before the end of the file"
        default:
            break
        }
        self.contentEnd = self.offset
        self.endRecord(into: &records)
    }

    /// Consumes one byte: RFC 4180's quoting, CRLF, lone CR and LF line ends, the size limit.
    private mutating func step(_ byte: UInt8, into records: inout [Record]) {
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        let carriage = UInt8(ascii: "\r")
        if self.state == .afterCR {
            self.state = .fieldStart
            if byte == newline {
                // The \n of a \r\n belongs to the record just ended.
                if var last = self.held.popLast() {
                    last.endOffset = self.offset
                    records.append(last)
                }
                self.recordStart = self.offset
                return
            }
            records.append(contentsOf: self.held)
            self.held.removeAll(keepingCapacity: true)
        }
        let endsLine = (byte == newline || byte == carriage) && self.state != .quoted
        if !endsLine {
            // The record's own bytes count towards the limit; its line end does not.
            self.rawCount += 1
            if self.rawCount <= self.maxRecordBytes {
                self.raw.append(byte)
            } else if self.rawCount == self.maxRecordBytes + 1 {
                // Over-long outranks any other problem: the row is refused for its size.
                self.problem = "record longer than \(self.maxRecordBytes) bytes"
            }
        }
        switch self.state {
        case .fieldStart, .unquoted:
            if byte == self.delimiter {
                self.endField()
            } else if endsLine {
                self.endLine(byte, into: &records)
            } else if byte == quote {
                if self.state == .fieldStart {
                    self.state = .quoted
                } else {
                    self.problem = self.problem ?? "quote inside an unquoted field (quote the whole field and double inner quotes)"
                    self.keep(byte)
                }
            } else {
                self.state = .unquoted
                self.keep(byte)
            }
        case .quoted:
            if byte == quote {
                self.quotedCR = false
                self.state = .quoteInQuoted
            } else {
                if byte == carriage {
                    self.line += 1
                } else if byte == newline && !self.quotedCR {
                    self.line += 1
                }
                self.quotedCR = byte == carriage
                self.keep(byte)
            }
        case .quoteInQuoted:
            if byte == quote {
                self.keep(quote)
                self.state = .quoted
            } else if byte == self.delimiter {
                self.endField()
            } else if endsLine {
                self.endLine(byte, into: &records)
            } else {
                self.problem = self.problem ?? "text after a closing quote"
                self.keep(byte)
                self.state = .unquoted
            }
        case .afterCR:
            break
        }
    }

    /// Whether the record is over the limit (its bytes past it are not held).
    private var truncated: Bool { self.rawCount > self.maxRecordBytes }

    /// Keeps a field byte, unless the record is already too long (then it is a reject, and
    /// its fields are not needed).
    private mutating func keep(_ byte: UInt8) {
        if !self.truncated { self.field.append(byte) }
    }

    /// A line end outside quotes: it ends the record.
    private mutating func endLine(_ byte: UInt8, into records: inout [Record]) {
        self.contentEnd = self.offset - 1
        self.line += 1
        if byte == UInt8(ascii: "\r") {
            var held: [Record] = []
            self.endRecord(into: &held)
            self.held = held
            self.state = .afterCR
        } else {
            self.endRecord(into: &records)
        }
    }

    /// Decodes the field just ended (UTF-8, or Latin-1 when declared); bytes that are not UTF-8
    /// make the record a reject rather than a mangled answer.
    private mutating func endField() {
        switch self.encoding {
        case .utf8:
            if let text = String(validating: self.field, as: UTF8.self) {
                self.fields.append(text)
            } else {
                self.problem = self.problem ?? "field \(self.fields.count + 1) has bytes that are not UTF-8 (declare the file's encoding on the route, e.g. encoding: latin1)"
                self.fields.append(String(decoding: self.field, as: UTF8.self))
            }
        case .latin1:
            var text = ""
            text.unicodeScalars.append(contentsOf: self.field.map { Unicode.Scalar($0) })
            self.fields.append(text)
        }
        self.field.removeAll(keepingCapacity: true)
        self.state = .fieldStart
    }

    /// Hands the record out (with its line, byte range and any problem) and starts the next.
    private mutating func endRecord(into records: inout [Record]) {
        self.endField()
        defer {
            self.recordLine = self.line
            self.recordStart = self.offset
            self.quotedCR = false
            self.state = .fieldStart
        }
        // A blank line is no record (as Python's csv reads it).
        if self.rawCount == 0 && self.fields == [""] && self.problem == nil {
            self.fields.removeAll(keepingCapacity: true)
            return
        }
        records.append(Record(
            fields: self.fields, raw: self.raw, line: self.recordLine, startOffset: self.recordStart, endOffset: self.offset,
            contentEndOffset: self.contentEnd, nextLine: self.line, problem: self.problem, truncated: self.truncated
        ))
        // The record now shares these buffers: fresh ones, sized for a record like this one.
        // Not `removeAll(keepingCapacity:)`: on a shared buffer it allocates a new one at
        // least as large, and the capacities crept up to 3.5 KB per buffer on 36-byte rows
        // (heaptrack: 6 MiB of live record buffers, the largest live allocation of a CSV run).
        let fieldCount = self.fields.count
        let rawCount = self.raw.count
        self.fields = []
        self.fields.reserveCapacity(fieldCount)
        self.raw = []
        self.raw.reserveCapacity(rawCount)
        self.rawCount = 0
        self.problem = nil
    }
}
