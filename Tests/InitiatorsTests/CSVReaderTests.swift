import Foundation
import Testing

@testable import Initiators
import SkyLib
import RouteModel
import SkyTestSupport

struct CSVReaderTests {
    func read(_ text: String, chunk: Int = .max, delimiter: Character = ",") -> [CSVReader.Record] {
        Self.read(Array(text.utf8), chunk: chunk, reader: CSVReader(delimiter: delimiter.asciiValue!))
    }

    /// Feeds `bytes` in chunks of `chunk` bytes and finishes.
    static func read(_ bytes: [UInt8], chunk: Int = .max, reader: CSVReader = CSVReader()) -> [CSVReader.Record] {
        var reader = reader
        var records: [CSVReader.Record] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            reader.feed(bytes[start..<end], into: &records)
            start = end
        }
        reader.finish(into: &records)
        return records
    }

    @Test func readsQuotesNewlinesAndLineEnds() {
        let records = self.read("\u{FEFF}a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\"two\nlines\",z\rlast,1")
        #expect(records.map(\.fields) == [["a", "b"], ["x, y", "say \"hi\""], ["two\nlines", "z"], ["last", "1"]])
        #expect(records.map(\.line) == [1, 2, 3, 5])
        #expect(records.allSatisfy { $0.problem == nil })
        #expect(String(decoding: records[1].raw, as: UTF8.self) == "\"x, y\",\"say \"\"hi\"\"\"")
    }

    @Test func malformedRowsAreReportedAndReadingGoesOn() {
        let records = self.read("a,b\nbad \"quote,1\n\"closed\"junk,2\nok,3\n\"open,4\n")
        #expect(records.map(\.line) == [1, 2, 3, 4, 5])
        #expect(records[1].problem?.contains("quote inside an unquoted field") == true)
        #expect(records[2].problem?.contains("text after a closing quote") == true)
        #expect(records[3].fields == ["ok", "3"] && records[3].problem == nil)
        #expect(records[4].problem?.contains("not closed") == true)
    }

    @Test func overLongRecordsAreCutAndReportedAndTheNextIsWhole() {
        var reader = CSVReader(maxRecordBytes: 4)
        var records: [CSVReader.Record] = []
        reader.feed(Array("abcdefg\nok\n".utf8), into: &records)
        #expect(records.map(\.problem) == ["record longer than 4 bytes", nil])
        #expect(records.map { String(decoding: $0.raw, as: UTF8.self) } == ["abcd", "ok"])
        #expect(records.map(\.line) == [1, 2])
    }

    @Test func chunkBoundariesDoNotMatter() {
        let text = "h1;h2\n\"a;\"\"b\";c\r\n\"multi\r\nline\";d\n"
        let whole = self.read(text, delimiter: ";")
        for chunk in [1, 2, 3, 7] {
            #expect(self.read(text, chunk: chunk, delimiter: ";") == whole)
        }
    }

    /// The reader takes runs of plain bytes at once when its input is contiguous, and byte by
    /// byte otherwise: both must read every input the same, including at the size limit.
    @Test func runsOfPlainBytesReadAsByteByByteDoes() {
        let source = "id,name,note\n1,ada,\"said \"\"hi\"\"\"\n2,\"grace, rear admiral\",\"two\r\nlines\"\r\n3,,\rlast\n"
        var mutator = Mutator(seed: 0xC5F_A57)
        for index in 0..<Mutator.cases(default: 2000) {
            let bytes = mutator.mutate(Array(source.utf8))
            let limit = [16, 20, 64, 1 << 20][index % 4]
            var fast = CSVReader(maxRecordBytes: limit), slow = CSVReader(maxRecordBytes: limit)
            var fastRecords: [CSVReader.Record] = [], slowRecords: [CSVReader.Record] = []
            for start in stride(from: 0, to: bytes.count, by: 11) {
                let chunk = bytes[start..<min(start + 11, bytes.count)]
                fast.feed(chunk, into: &fastRecords)
                // A lazy view has no contiguous storage: the reader steps byte by byte.
                slow.feed(chunk.lazy.map { $0 }, into: &slowRecords)
            }
            fast.finish(into: &fastRecords)
            slow.finish(into: &slowRecords)
            #expect(fastRecords == slowRecords, "case \(index): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            #expect(fast.position == slow.position && fast.currentLine == slow.currentLine, "case \(index)")
        }
    }

    @Test func resumesFromAnOffset() {
        let text = "a,b\n1,2\n3,4\n"
        let all = self.read(text)
        var reader = CSVReader(offset: all[1].endOffset, line: all[1].nextLine)
        var records: [CSVReader.Record] = []
        reader.feed(Array(text.utf8)[Int(all[1].endOffset)...], into: &records)
        reader.finish(into: &records)
        #expect(records.map(\.fields) == [["3", "4"]])
        #expect(records.first?.line == 3 && records.first?.endOffset == Int64(text.utf8.count))
    }

    /// Random well-formed CSV must read exactly as Python's csv module reads it.
    @Test func agreesWithPythonsCSVModule() async throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abc ,\"\n\r;é😀x1")
        var rows: [[String]] = []
        for _ in 0..<400 {
            rows.append((0..<Int.random(in: 1...5, using: &generator)).map { _ in
                String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            })
        }
        // Quote every field that needs it, as a CSV writer would (scalars, not Characters:
        // "\r" then "\n" is one Character).
        let text = rows.map { row in
            row.map { field in
                field.unicodeScalars.contains(where: { ",\"\n\r".unicodeScalars.contains($0) }) || field.isEmpty ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
            }.joined(separator: ",")
        }.joined(separator: "\r\n") + "\r\n"
        let path = NSTemporaryDirectory() + "csv-\(UUID().uuidString).csv"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8'), strict=True))))", path]
        let outputPath = path + ".json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        python.standardOutput = FileHandle(forWritingAtPath: outputPath)
        try python.run()
        while python.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        let output = try Data(contentsOf: URL(fileURLWithPath: outputPath))
        let expected = try #require(try JSONSerialization.jsonObject(with: output) as? [[String]])
        for chunk in [Int.max, 5] {
            let ours = self.read(text, chunk: chunk).map(\.fields)
            #expect(ours.count == expected.count)
            if let index = Array(zip(ours, expected)).firstIndex(where: { $0.0 != $0.1 }) {
                Issue.record("row \(index) differs: ours \(ours[index]), Python's \(expected[index])")
            }
        }
    }
}

/// Issue 15's reader cases: line numbers after a lone CR in quotes, the size limit, the
/// encoding, and record offsets that let a rejected row be copied whole.
struct CSVReaderExactnessTests {
    func read(_ bytes: [UInt8], chunk: Int = .max, reader: CSVReader = CSVReader()) -> [CSVReader.Record] {
        CSVReaderTests.read(bytes, chunk: chunk, reader: reader)
    }

    /// Python's csv counts a lone CR inside a quoted field as a line; we did not, and every
    /// later line number was one short.
    @Test func lineNumbersAgreeWithPythonAfterLineEndsInsideQuotes() throws {
        let text = "a,\"x\ry\"\nb,\"p\r\nq\"\rc,\"m\nn\"\nd,1\n"
        let path = NSTemporaryDirectory() + "csv-lines-\(UUID().uuidString).csv"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The line each record starts on, as Python's reader.line_num tells it.
        let script = """
            import csv, json, sys
            r = csv.reader(open(sys.argv[1], newline=''))
            starts, last = [], 0
            for row in r:
                starts.append(last + 1); last = r.line_num
            print(json.dumps(starts))
            """
        let python = try runPython(script, path)
        let expected = try JSONParser.parse(Data(python.utf8)).arrayValue?.compactMap(\.intValue).map(Int.init)
        for chunk in [1, 2, 5, .max] {
            #expect(self.read(Array(text.utf8), chunk: chunk).map(\.line) == expected, "chunk \(chunk)")
        }
    }

    /// A record of exactly the limit is accepted (the line end does not count); one byte more
    /// is refused, and its whole byte range is reported.
    @Test func theLimitIsInclusiveAndLongRecordsKeepTheirRange() {
        let reader = CSVReader(maxRecordBytes: 6)
        let records = self.read(Array("abc,de\nabc,def\r\nok\n".utf8), reader: reader)
        #expect(records.map(\.problem) == [nil, "record longer than 6 bytes", nil])
        #expect(records.map(\.truncated) == [false, true, false])
        #expect(records[1].startOffset == 7 && records[1].contentEndOffset == 14 && records[1].endOffset == 16)
        #expect(records[2].fields == ["ok"] && records[2].line == 3)
    }

    /// A `\r\n` split across two chunks still ends one record (its offsets include the `\n`).
    @Test func aCRLFSplitAcrossChunksEndsOneRecord() {
        let bytes = Array("a,b\r\nc,d\r\n".utf8)
        for chunk in 1...bytes.count {
            let records = self.read(bytes, chunk: chunk)
            #expect(records.map(\.endOffset) == [5, 10], "chunk \(chunk)")
            #expect(records.map(\.nextLine) == [2, 3], "chunk \(chunk)")
        }
    }

    @Test func bytesThatAreNotUTF8MakeTheRecordMalformedUnlessLatin1() {
        let bytes: [UInt8] = [0x61, 0x2C, 0xE9, 0x0A]  // a,é in Latin-1
        let strict = self.read(bytes)
        #expect(strict.first?.problem?.contains("field 2 has bytes that are not UTF-8") == true)
        #expect(strict.first?.raw == [0x61, 0x2C, 0xE9])
        let latin1 = self.read(bytes, reader: CSVReader(encoding: .latin1))
        #expect(latin1.first?.problem == nil && latin1.first?.fields == ["a", "é"])
    }
}
