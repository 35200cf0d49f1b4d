/// A streaming, byte-level RFC 4180 reader: feed it chunks of a file, take complete records.
///
/// Quoted fields with `""` escapes and embedded newlines, `\n`, `\r\n` and lone `\r` line ends,
/// and a UTF-8 byte-order mark are handled. It is strict where RFC 4180 is: a quote inside an
/// unquoted field, text after a closing quote, or a quote left open at the end of the input
/// make that record malformed (it is still returned, with its raw text and the reason, so the
/// caller can reject it and go on). Memory holds one record at a time, whatever the file size.
///
/// Written because the CSV packages available read whole files into memory or were measured
/// too slow for a million rows (DESIGN.md); it is tested against Python's `csv` module.
public struct CSVReader: Sendable {
    /// One record and where it was.
    public struct Record: Sendable, Equatable {
        /// The fields, decoded.
        public var fields: [String]
        /// The record's bytes as they were in the file, without the line end.
        public var raw: [UInt8]
        /// 1-based line the record starts on.
        public var line: Int
        /// Byte offset just past the record (and its line end).
        public var endOffset: Int64
        /// Line the next record starts on.
        public var nextLine: Int
        /// Why the record is malformed, or `nil`.
        public var problem: String?
    }

    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted, afterCR
    }

    public let delimiter: UInt8
    /// Longest record accepted; a longer one is cut off and reported malformed.
    public let maxRecordBytes: Int
    private var state = State.fieldStart
    private var field: [UInt8] = []
    private var fields: [String] = []
    private var raw: [UInt8] = []
    private var problem: String?
    private var offset: Int64
    private var line: Int
    private var recordLine: Int
    private var atStart: Bool
    private var bomChecked = false

    /// - Parameters:
    ///   - offset: byte offset of the first byte that will be fed (to resume mid-file).
    ///   - line: line number at that offset.
    public init(delimiter: UInt8 = UInt8(ascii: ","), maxRecordBytes: Int = 1 << 20, offset: Int64 = 0, line: Int = 1) {
        self.delimiter = delimiter
        self.maxRecordBytes = maxRecordBytes
        self.offset = offset
        self.line = line
        self.recordLine = line
        self.atStart = offset == 0
    }

    /// Consumes `bytes` and appends every record they complete to `records`.
    public mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes, into records: inout [Record]) {
        var iterator = bytes.makeIterator()
        if self.atStart && !self.bomChecked {
            // A UTF-8 byte-order mark at the very start is not data. Feeding byte by byte
            // across the BOM is rare enough to ignore; whole chunks are the norm.
            self.bomChecked = true
            if bytes.count >= 3 {
                let prefix = Array(bytes.prefix(3))
                if prefix == [0xEF, 0xBB, 0xBF] {
                    for _ in 0..<3 { _ = iterator.next() }
                    self.offset += 3
                }
            }
        }
        while let byte = iterator.next() {
            self.offset += 1
            self.step(byte, into: &records)
        }
    }

    /// Ends the input: a last record without a line end is completed.
    public mutating func finish(into records: inout [Record]) {
        switch self.state {
        case .fieldStart where self.fields.isEmpty && self.raw.isEmpty:
            return
        case .quoted:
            self.problem = self.problem ?? "quoted field not closed before the end of the file"
        default:
            break
        }
        self.endRecord(into: &records)
    }

    private mutating func step(_ byte: UInt8, into records: inout [Record]) {
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        let carriage = UInt8(ascii: "\r")
        if self.state == .afterCR {
            self.state = .fieldStart
            if byte == newline {
                // The \n of a \r\n belongs to the record just ended.
                if var last = records.popLast() {
                    last.endOffset = self.offset
                    records.append(last)
                }
                return
            }
        }
        let kept = self.raw.count < self.maxRecordBytes
        if kept {
            self.raw.append(byte)
        } else if self.problem == nil {
            self.problem = "record longer than \(self.maxRecordBytes) bytes"
        }
        switch self.state {
        case .fieldStart, .unquoted:
            if byte == self.delimiter {
                self.endField()
            } else if byte == newline || byte == carriage {
                self.endLine(byte, kept: kept, into: &records)
            } else if byte == quote {
                if self.state == .fieldStart {
                    self.state = .quoted
                } else {
                    self.problem = self.problem ?? "quote inside an unquoted field (quote the whole field and double inner quotes)"
                    self.field.append(byte)
                }
            } else {
                self.state = .unquoted
                self.field.append(byte)
            }
        case .quoted:
            if byte == quote {
                self.state = .quoteInQuoted
            } else {
                if byte == newline { self.line += 1 }
                self.field.append(byte)
            }
        case .quoteInQuoted:
            if byte == quote {
                self.field.append(quote)
                self.state = .quoted
            } else if byte == self.delimiter {
                self.endField()
            } else if byte == newline || byte == carriage {
                self.endLine(byte, kept: kept, into: &records)
            } else {
                self.problem = self.problem ?? "text after a closing quote"
                self.field.append(byte)
                self.state = .unquoted
            }
        case .afterCR:
            break
        }
    }

    /// A line end outside quotes: it ends the record (and is not part of its raw text).
    private mutating func endLine(_ byte: UInt8, kept: Bool, into records: inout [Record]) {
        if kept { self.raw.removeLast() }
        self.line += 1
        self.endRecord(into: &records)
        if byte == UInt8(ascii: "\r") { self.state = .afterCR }
    }

    private mutating func endField() {
        self.fields.append(String(decoding: self.field, as: UTF8.self))
        self.field.removeAll(keepingCapacity: true)
        self.state = .fieldStart
    }

    private mutating func endRecord(into records: inout [Record]) {
        self.endField()
        // A blank line is no record (as Python's csv reads it).
        if self.raw.isEmpty && self.fields == [""] && self.problem == nil {
            self.fields.removeAll(keepingCapacity: true)
            self.recordLine = self.line
            self.state = .fieldStart
            return
        }
        records.append(Record(fields: self.fields, raw: self.raw, line: self.recordLine, endOffset: self.offset, nextLine: self.line, problem: self.problem))
        self.fields.removeAll(keepingCapacity: true)
        self.raw.removeAll(keepingCapacity: true)
        self.problem = nil
        self.recordLine = self.line
        self.state = .fieldStart
    }
}
