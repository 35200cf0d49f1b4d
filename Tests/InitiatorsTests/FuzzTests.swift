import NIOCore
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

@testable import Initiators

/// Mutated STOMP frames and CSV files: every case decodes, waits for more bytes, or fails with
/// our typed error; none crashes, loops, or loses count of the bytes it was given. (The
/// STOMP case found commands with a stray NUL or CR in them; commands are now checked.)
@Suite struct InitiatorFuzzTests {
    static let frames = "CONNECTED\nversion:1.2\n\n\0MESSAGE\ndestination:/queue/a\nmessage-id:1\nsubscription:0\ncontent-length:5\n\nhe\0lo\0"
        + "MESSAGE\r\nk:a\\cb\\nc\r\n\r\nbody\0\n\nRECEIPT\nreceipt-id:9\n\n\0"

    @Test func mutatedStompStreamsDecodeOrFailCleanly() {
        var mutator = Mutator(seed: 0x5EED_0101)
        for index in 0..<Mutator.cases(default: 3000) {
            let bytes = mutator.mutate(Array(Self.frames.utf8))
            var decoder = StompFrameDecoder(maxHeaderBytes: 4096, maxBodyBytes: 4096)
            var buffer = ByteBuffer(bytes: bytes)
            var decoded = 0
            do {
                while let frame = try decoder.decode(buffer: &buffer) {
                    decoded += 1
                    #expect(!frame.command.isEmpty, "case \(index)")
                    // A frame that decoded encodes and decodes to itself.
                    var again = ByteBuffer()
                    try StompFrameEncoder().encode(data: frame, out: &again)
                    var check = StompFrameDecoder()
                    let back = try check.decode(buffer: &again)
                    #expect(back?.command == frame.command && back?.body == frame.body, "case \(index): \(frame) became \(String(describing: back))")
                    guard decoded < 100 else { Issue.record("case \(index): more frames than bytes allow"); break }
                }
                _ = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
            } catch is StompProtocolError {
                // Our clear error: the connection would be closed with it.
            } catch {
                Issue.record("case \(index): unexpected \(type(of: error)): \(error)")
            }
        }
    }

    @Test func mutatedCSVGivesRecordsOrRejectsWithLineNumbers() throws {
        let source = "id,name,note\n1,ada,\"said \"\"hi\"\"\"\n2,\"grace, rear admiral\",\"two\nlines\"\r\n3,,\n"
        var mutator = Mutator(seed: 0x5EED_0102)
        for index in 0..<Mutator.cases(default: 2000) {
            var reader = CSVReader(maxRecordBytes: 64)
            let bytes = mutator.mutate(Array(source.utf8))
            var found: [CSVReader.Record] = []
            // Fed in small chunks, as a file is read.
            for start in stride(from: 0, to: bytes.count, by: 7) {
                reader.feed(bytes[start..<min(start + 7, bytes.count)], into: &found)
            }
            reader.finish(into: &found)
            var lastLine = 0
            var consumed: Int64 = 0
            for record in found {
                #expect(record.line > lastLine, "case \(index): line numbers go back")
                #expect(record.endOffset > consumed, "case \(index): offsets go back")
                if let problem = record.problem { #expect(!problem.isEmpty, "case \(index)") }
                lastLine = record.line
                consumed = record.endOffset
            }
            #expect(consumed <= Int64(bytes.count), "case \(index)")
            let records = found.count
            #expect(records <= bytes.count + 1, "case \(index)")
        }
    }
}
