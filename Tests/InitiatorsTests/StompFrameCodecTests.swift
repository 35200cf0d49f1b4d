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

    @Test func rejectsBrokenFrames() throws {
        for text in ["MESSAGE\nbad header\n\n\0", "MESSAGE\ncontent-length:2\n\nabc\0", "MESSAGE\nk:\\t\n\n\0", "MESSAGE\ncontent-length:x\n\n\0", "lo\rMESSAGE\n\n\0", "message\n\n\0"] {
            var decoder = StompFrameDecoder()
            var buffer = ByteBuffer(string: text)
            #expect(throws: StompProtocolError.self) { _ = try decoder.decode(buffer: &buffer) }
        }
        var small = StompFrameDecoder(maxHeaderBytes: 1024, maxBodyBytes: 10)
        var big = ByteBuffer(string: "SEND\ncontent-length:11\n\nhello world\0")
        #expect(throws: StompProtocolError(reason: "body of 11 bytes is over the limit of 10")) { _ = try small.decode(buffer: &big) }
        var half = ByteBuffer(string: "SEND\nk:v\n\nhal")
        var decoder = StompFrameDecoder()
        #expect(try decoder.decode(buffer: &half) == nil)
        #expect(throws: StompProtocolError.self) { _ = try decoder.decodeLast(buffer: &half, seenEOF: true) }
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
}
