import NIOCore
import NIOTestUtils
import Testing

@testable import Initiators

struct StompFrameCodecTests {
    @Test func decodesFramesFedInEveryChunking() throws {
        let pairs: [(String, [StompFrame])] = [
            ("CONNECTED\nversion:1.2\nserver:x\\cy\n\n\0", [StompFrame(command: "CONNECTED", headers: [("version", "1.2"), ("server", "x\\cy")])]),
            ("\n\r\nMESSAGE\ndestination:/queue/a\nmessage-id:1\nnote:a\\cb\\nc\\\\d\n\nhello\0",
             [StompFrame(command: "MESSAGE", headers: [("destination", "/queue/a"), ("message-id", "1"), ("note", "a:b\nc\\d")], body: Array("hello".utf8))]),
            ("MESSAGE\r\ncontent-length:5\r\nk:v\r\n\r\na\0b\0c\0\n",
             [StompFrame(command: "MESSAGE", headers: [("content-length", "5"), ("k", "v")], body: [97, 0, 98, 0, 99])]),
            ("RECEIPT\nreceipt-id:7\n\n\0ERROR\nmessage:bad\n\noops\0",
             [StompFrame(command: "RECEIPT", headers: [("receipt-id", "7")]), StompFrame(command: "ERROR", headers: [("message", "bad")], body: Array("oops".utf8))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs.map { (ByteBuffer(string: $0.0), $0.1) },
            decoderFactory: { StompFrameDecoder() }
        )
    }

    /// A stream that lost its framing fails the connection: nothing after it can be trusted.
    @Test func rejectsBrokenStreams() throws {
        for text in ["MESSAGE\ncontent-length:2\n\nabc\0", "MESSAGE\ncontent-length:x\n\n\0", "lo\rMESSAGE\n\n\0", "message\n\n\0", "\0MESSAGE\n\n\0"] {
            var decoder = StompFrameDecoder()
            var buffer = ByteBuffer(string: text)
            #expect(throws: StompProtocolError.self, "\(text.debugDescription)") { _ = try decoder.decode(buffer: &buffer) }
        }
        var half = ByteBuffer(string: "SEND\nk:v\n\nhal")
        var decoder = StompFrameDecoder()
        #expect(try decoder.decode(buffer: &half) == nil)
        #expect(throws: StompProtocolError.self) { _ = try decoder.decodeLast(buffer: &half, seenEOF: true) }
        // Half of a frame being passed over (over the limit) is half a frame too.
        var small = StompFrameDecoder(maxHeaderBytes: 1024, maxBodyBytes: 4)
        var cut = ByteBuffer(string: "MESSAGE\ncontent-length:100\n\n0123456789")
        #expect(try small.decode(buffer: &cut) == nil)
        #expect(throws: StompProtocolError.self) { _ = try small.decodeLast(buffer: &cut, seenEOF: true) }
    }

    /// Issue 32: one bad message must not stall the queue. A frame whose place in the stream
    /// is known decodes with its problem (the initiator dead-letters it), its body over the
    /// limit passed over as it arrives, and the frames after it decode, in every chunking.
    @Test func aBadFrameDecodesWithItsProblemAndTheNextOnesFlow() throws {
        let next = "MESSAGE\nack:2\nmessage-id:2\n\nnext\0"
        let nextFrame = StompFrame(command: "MESSAGE", headers: [("ack", "2"), ("message-id", "2")], body: Array("next".utf8))
        let cases: [(String, StompFrame)] = [
            // A header line without a colon, and an undefined escape: named, the rest kept.
            ("MESSAGE\nack:1\nbad header\n\nbody\0",
             StompFrame(command: "MESSAGE", headers: [("ack", "1")], body: Array("body".utf8), problem: "header line without ':' in MESSAGE frame")),
            ("MESSAGE\nack:1\nk:\\t\n\nbody\0",
             StompFrame(command: "MESSAGE", headers: [("ack", "1")], body: Array("body".utf8), problem: "undefined escape '\\t' in header in MESSAGE frame")),
            // A body over the limit, by content-length (NULs inside) and without it.
            ("MESSAGE\nack:1\ncontent-length:12\n\n0123\0" + "5678901\0",
             StompFrame(command: "MESSAGE", headers: [("ack", "1"), ("content-length", "12")], problem: "body of 12 bytes is over the limit of 10")),
            ("MESSAGE\nack:1\n\n0123456789AB\0",
             StompFrame(command: "MESSAGE", headers: [("ack", "1")], problem: "body over the limit of 10 bytes")),
            // Headers over the limit: passed over but for those that answer the frame.
            ("MESSAGE\nx-junk:" + String(repeating: "j", count: 200) + "\nack:1\nmessage-id:m\\c1\nreply-to:/queue/r\ncontent-length:3\n\na\0b\0",
             StompFrame(command: "MESSAGE", headers: [("ack", "1"), ("message-id", "m:1"), ("reply-to", "/queue/r"), ("content-length", "3")],
                        problem: "headers longer than 64 bytes; only those needed to answer the frame were read")),
        ]
        for (text, frame) in cases {
            try ByteToMessageDecoderVerifier.verifyDecoder(
                inputOutputPairs: [(ByteBuffer(string: text + next), [frame, nextFrame])],
                decoderFactory: { StompFrameDecoder(maxHeaderBytes: 64, maxBodyBytes: 10) }
            )
        }
    }

    /// The defaults are the limits README.md and SECURITY.md state: 16 MiB bodies, 64 KiB
    /// headers; a body of exactly 16 MiB is read, one byte more is passed over.
    @Test func theLimitsAreTheStatedOnesAndHoldAtTheirValue() throws {
        let decoder = StompFrameDecoder()
        #expect(decoder.maxBodyBytes == 16 * 1024 * 1024)
        #expect(decoder.maxHeaderBytes == 64 * 1024)
        for (size, readWhole) in [(16 * 1024 * 1024, true), (16 * 1024 * 1024 + 1, false)] {
            var buffer = ByteBuffer(string: "MESSAGE\nack:1\ncontent-length:\(size)\n\n")
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: size)
            buffer.writeString("\0MESSAGE\nack:2\n\nok\0")
            var decoding = StompFrameDecoder()
            let first = try #require(try decoding.decode(buffer: &buffer))
            #expect(first.body.count == (readWhole ? size : 0))
            #expect((first.problem == nil) == readWhole, "\(first.problem ?? "")")
            #expect(try decoding.decode(buffer: &buffer)?.body == Array("ok".utf8))
        }
    }

    @Test func encodedFramesDecodeToThemselves() throws {
        let frame = StompFrame(command: "SEND", headers: [("destination", "/queue/a:b"), ("x", "line\nbreak\\")], body: [0, 1, 2, 0])
        var buffer = ByteBuffer()
        try StompFrameEncoder().encode(data: frame, out: &buffer)
        #expect(String(buffer: buffer).hasPrefix("SEND\ndestination:/queue/a\\cb\nx:line\\nbreak\\\\\ncontent-length:4\n\n"))
        var decoder = StompFrameDecoder()
        let decoded = try #require(try decoder.decode(buffer: &buffer))
        #expect(decoded.command == "SEND" && decoded.body == [0, 1, 2, 0] && decoded[header: "x"] == "line\nbreak\\" && decoded[header: "destination"] == "/queue/a:b")
    }

    /// Headers are read and written as bytes: characters of any length pass through whole,
    /// escapes beside them included, and an undefined escape before one names it whole.
    @Test func headersWithCharactersBeyondASCIIRoundTripAndNameBadEscapes() throws {
        let frame = StompFrame(command: "SEND", headers: [("clé", "naïve:é\n👋🏽"), ("r\u{00E9}sum\u{00E9}", "\r")], body: Array("x".utf8))
        var buffer = ByteBuffer()
        try StompFrameEncoder().encode(data: frame, out: &buffer)
        #expect(String(buffer: buffer).hasPrefix("SEND\nclé:naïve\\cé\\n👋🏽\nrésumé:\\r\n"))
        var decoder = StompFrameDecoder()
        let decoded = try #require(try decoder.decode(buffer: &buffer))
        #expect(decoded.headers.map(\.0) == ["clé", "résumé", "content-length"] && decoded[header: "clé"] == "naïve:é\n👋🏽" && decoded[header: "résumé"] == "\r")
        var bad = ByteBuffer(string: "MESSAGE\nack:1\nnote:a\\é\n\nb\0")
        let named = try #require(try decoder.decode(buffer: &bad))
        #expect(named.problem == "undefined escape '\\é' in header in MESSAGE frame" && named[header: "ack"] == "1")
    }
}
