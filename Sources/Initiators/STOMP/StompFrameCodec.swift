public import NIOCore

/// Decodes STOMP 1.2 frames from bytes, as `NIOSingleStepByteToMessageDecoder`.
///
/// Heart-beats (bare line ends between frames) are skipped. Headers are unescaped (`\r \n \c
/// \\`), except in CONNECT and CONNECTED frames as the spec says. With `content-length` the
/// body is read by length (it may contain NULs); without it, up to the first NUL. Header and
/// body sizes are limited, and a partial frame is not rescanned from its start.
public struct StompFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = StompFrame

    /// A frame whose command and headers are longer is refused.
    public let maxHeaderBytes: Int
    /// A frame whose body is longer is refused.
    public let maxBodyBytes: Int
    /// How far the search for the end of the headers got, so it resumes there.
    private var scanned = 0

    /// Creates a `StompFrameDecoder` from its parts.
    public init(maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 16 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> StompFrame? {
        // Heart-beats: line ends before a frame.
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), byte == 0x0A || byte == 0x0D {
            buffer.moveReaderIndex(forwardBy: 1)
            self.scanned = 0
        }
        let view = buffer.readableBytesView
        guard !view.isEmpty else { return nil }
        // Find the blank line that ends the headers.
        var headerEnd: Int?
        var bodyStart = 0
        var index = view.startIndex + max(0, self.scanned - 3)
        while index < view.endIndex {
            if view[index] == 0x0A {
                let next = view.index(after: index)
                if next < view.endIndex, view[next] == 0x0A {
                    headerEnd = index - view.startIndex
                    bodyStart = next - view.startIndex + 1
                    break
                }
                if next < view.endIndex, view[next] == 0x0D, view.index(after: next) < view.endIndex, view[view.index(after: next)] == 0x0A {
                    headerEnd = index - view.startIndex
                    bodyStart = next - view.startIndex + 2
                    break
                }
            }
            index = view.index(after: index)
        }
        guard let headerEnd else {
            self.scanned = view.count
            if view.count > self.maxHeaderBytes { throw StompProtocolError(reason: "headers longer than \(self.maxHeaderBytes) bytes") }
            return nil
        }
        // Split on bytes: as Characters, "\r\n" is one and would not split on "\n".
        var lines = view[view.startIndex..<(view.startIndex + headerEnd)].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        let command = lines.removeFirst()
        guard !command.isEmpty else { throw StompProtocolError(reason: "frame without a command") }
        // STOMP commands are upper-case words; anything else is a broken stream (found by the
        // fuzz tests: a stray NUL or CR would otherwise become part of a "command").
        guard command.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else {
            throw StompProtocolError(reason: "malformed command \(String(reflecting: command))")
        }
        let escaped = command != "CONNECT" && command != "CONNECTED"
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw StompProtocolError(reason: "header line without ':' in \(command) frame") }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...])
            headers.append(escaped ? (try Self.unescape(name), try Self.unescape(value)) : (name, value))
        }
        let lengthHeader = headers.first { $0.0 == "content-length" }?.1
        let body: [UInt8]
        let frameLength: Int
        if let lengthHeader {
            guard let length = Int(lengthHeader), length >= 0 else { throw StompProtocolError(reason: "bad content-length '\(lengthHeader)'") }
            guard length <= self.maxBodyBytes else { throw StompProtocolError(reason: "body of \(length) bytes is over the limit of \(self.maxBodyBytes)") }
            guard view.count >= bodyStart + length + 1 else { return nil }
            guard view[view.startIndex + bodyStart + length] == 0 else { throw StompProtocolError(reason: "frame body not followed by NUL") }
            body = Array(view[(view.startIndex + bodyStart)..<(view.startIndex + bodyStart + length)])
            frameLength = bodyStart + length + 1
        } else {
            guard let nul = view[(view.startIndex + bodyStart)...].firstIndex(of: 0) else {
                if view.count - bodyStart > self.maxBodyBytes { throw StompProtocolError(reason: "body over the limit of \(self.maxBodyBytes) bytes") }
                return nil
            }
            body = Array(view[(view.startIndex + bodyStart)..<nul])
            frameLength = nul - view.startIndex + 1
        }
        buffer.moveReaderIndex(forwardBy: frameLength)
        self.scanned = 0
        return StompFrame(command: command, headers: headers, body: body)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> StompFrame? {
        if let frame = try self.decode(buffer: &buffer) { return frame }
        // Trailing heart-beats are fine; half a frame is not.
        if buffer.readableBytesView.contains(where: { $0 != 0x0A && $0 != 0x0D }) {
            throw StompProtocolError(reason: "connection closed in the middle of a frame")
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return nil
    }

    static func unescape(_ text: String) throws -> String {
        guard text.contains("\\") else { return text }
        var result = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "\\" else {
                result.append(character)
                continue
            }
            switch iterator.next() {
            case "r": result.append("\r")
            case "n": result.append("\n")
            case "c": result.append(":")
            case "\\": result.append("\\")
            case let other: throw StompProtocolError(reason: "undefined escape '\\\(other.map(String.init) ?? "")' in header")
            }
        }
        return result
    }
}

/// Encodes STOMP 1.2 frames: headers escaped (not in CONNECT), `content-length` always set so
/// bodies may hold any bytes.
public struct StompFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = StompFrame

    /// Creates a `StompFrameEncoder` with the defaults.
    public init() {}

    public func encode(data frame: StompFrame, out: inout ByteBuffer) throws {
        out.writeString(frame.command)
        out.writeInteger(UInt8(0x0A))
        let escape = frame.command != "CONNECT" && frame.command != "CONNECTED"
        for (name, value) in frame.headers where name != "content-length" {
            out.writeString(escape ? Self.escape(name) : name)
            out.writeInteger(UInt8(ascii: ":"))
            out.writeString(escape ? Self.escape(value) : value)
            out.writeInteger(UInt8(0x0A))
        }
        if !frame.body.isEmpty || frame.command == "SEND" || frame.command == "MESSAGE" {
            out.writeString("content-length:\(frame.body.count)\n")
        }
        out.writeInteger(UInt8(0x0A))
        out.writeBytes(frame.body)
        out.writeInteger(UInt8(0))
    }

    static func escape(_ text: String) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == ":" || $0 == "\n" || $0 == "\r" }) else { return text }
        var result = ""
        for character in text {
            switch character {
            case "\\": result += "\\\\"
            case ":": result += "\\c"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            default: result.append(character)
            }
        }
        return result
    }
}
