public import NIOCore

/// Decodes STOMP 1.2 frames from bytes, as `NIOSingleStepByteToMessageDecoder`.
///
/// Heart-beats (bare line ends between frames) are skipped. Headers are unescaped (`\r \n \c
/// \\`), except in CONNECT and CONNECTED frames as the spec says. With `content-length` the
/// body is read by length (it may contain NULs); without it, up to the first NUL. A partial
/// frame is not rescanned from its start.
///
/// One bad message must not stall the ones behind it, so a frame whose place in the stream
/// can still be found is decoded with a ``StompFrame/problem`` rather than failing the
/// connection (which would only bring the same message back): a body over `maxBodyBytes` is
/// passed over as it arrives (never held), headers over `maxHeaderBytes` are passed over
/// keeping only those it takes to answer the message (`ack`, `message-id` …), and a malformed
/// header line or escape is named. Only a stream that has lost its framing (no command, a
/// body not followed by NUL, an unreadable `content-length`) throws.
public struct StompFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = StompFrame

    /// Headers longer than this (command line included) are passed over, but for those it
    /// takes to answer the frame.
    public let maxHeaderBytes: Int
    /// A body longer than this is passed over; the frame is decoded without it.
    public let maxBodyBytes: Int
    /// How far the search for the end of the headers got, so it resumes there.
    private var scanned = 0
    /// A frame over a limit whose bytes are being passed over as they arrive.
    private var skipping: Skipping?

    /// The headers kept from a frame whose headers are over the limit: what answering it takes
    /// (acking it, dead-lettering it with its reply address and correlation).
    static let answeringHeaders: Set<String> = [
        "ack", "message-id", "subscription", "destination", "content-length", "content-type", "reply-to", "correlation-id", "redelivered", "receipt-id",
    ]
    /// Longest header line kept from a frame whose headers are over the limit.
    static let keptLineBytes = 1024

    /// A frame being passed over: what is kept of it, and where in it the bytes are.
    private struct Skipping {
        var frame: StompFrame
        var escaped: Bool
        var phase: Phase

        enum Phase {
            /// Header lines: the first bytes of the one being read, and its length so far.
            case headers(line: [UInt8], length: Int)
            /// The body: bytes left up to and with its NUL (`content-length` known), or up to
            /// the next NUL.
            case body(remaining: Int?)
        }
    }

    /// Creates a `StompFrameDecoder` from its parts.
    public init(maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 16 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> StompFrame? {
        if self.skipping != nil { return try self.passOver(&buffer) }
        // Heart-beats: line ends before a frame.
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), byte == 0x0A || byte == 0x0D {
            buffer.moveReaderIndex(forwardBy: 1)
            self.scanned = 0
        }
        let view = buffer.readableBytesView
        guard !view.isEmpty else { return nil }
        guard let (headerEnd, bodyStart) = Self.headerEnd(in: view, from: max(0, self.scanned - 3)) else {
            self.scanned = view.count
            guard view.count > self.maxHeaderBytes else { return nil }
            return try self.passOverLongHeaders(&buffer)
        }
        // Lines found on bytes (as Characters, "\r\n" is one and would not end at "\n"), one
        // at a time: no array of them made per frame.
        let end = view.startIndex + headerEnd
        var newline = view[view.startIndex..<end].firstIndex(of: 0x0A) ?? end
        let command = try Self.command(view[view.startIndex..<newline])
        let escaped = command != "CONNECT" && command != "CONNECTED"
        var headers: [(String, String)] = []
        headers.reserveCapacity(10)  // a broker's MESSAGE carries about eight
        var problems: [String] = []
        while newline < end {
            let start = newline + 1
            newline = view[start..<end].firstIndex(of: 0x0A) ?? end
            let line = view[start..<newline]
            guard !line.isEmpty && !(line.count == 1 && line.first == 0x0D) else { continue }
            switch Self.header(line, escaped: escaped) {
            case .success(let header): headers.append(header)
            case .failure(let error): problems.append("\(error.reason) in \(command) frame")
            }
        }
        if headerEnd > self.maxHeaderBytes {
            // Arrived at once, so they are here already: treated as when they trickle in (the
            // few headers that answer it kept, the body passed over), whatever the chunking.
            var kept: [(String, String)] = []
            for header in headers where Self.answeringHeaders.contains(header.0) && !kept.contains(where: { $0.0 == header.0 }) { kept.append(header) }
            let contentLength = kept.first { $0.0 == "content-length" }.flatMap { Int($0.1) }.flatMap { $0 >= 0 ? $0 : nil }
            let frame = StompFrame(command: command, headers: kept, problem: "headers longer than \(self.maxHeaderBytes) bytes; only those needed to answer the frame were read")
            return try self.skip(&buffer, from: bodyStart, Skipping(frame: frame, escaped: escaped, phase: .body(remaining: contentLength.map { $0 + 1 })))
        }
        let head = StompFrame(command: command, headers: headers, problem: problems.isEmpty ? nil : problems.joined(separator: "; "))
        return try self.body(of: head, escaped: escaped, at: bodyStart, in: &buffer)
    }

    /// Where the blank line that ends the headers is (`headerEnd`), and the body's first byte,
    /// searching `view` from `start` (where the last search stopped); `nil` when not there yet.
    private static func headerEnd(in view: ByteBufferView, from start: Int) -> (headerEnd: Int, bodyStart: Int)? {
        var index = view.startIndex + start
        while index < view.endIndex {
            if view[index] == 0x0A {
                let next = view.index(after: index)
                if next < view.endIndex, view[next] == 0x0A {
                    return (index - view.startIndex, next - view.startIndex + 1)
                }
                if next < view.endIndex, view[next] == 0x0D, view.index(after: next) < view.endIndex, view[view.index(after: next)] == 0x0A {
                    return (index - view.startIndex, next - view.startIndex + 2)
                }
            }
            index = view.index(after: index)
        }
        return nil
    }

    /// Headers over the limit and not yet ended: passes over them as they come, keeping the few
    /// it takes to answer the frame.
    private mutating func passOverLongHeaders(_ buffer: inout ByteBuffer) throws -> StompFrame? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: 0x0A), newline - view.startIndex <= self.maxHeaderBytes else {
            throw StompProtocolError(reason: "no command line within the first \(self.maxHeaderBytes) bytes of a frame")
        }
        let command = try Self.command(view[view.startIndex..<newline])
        let frame = StompFrame(command: command, problem: "headers longer than \(self.maxHeaderBytes) bytes; only those needed to answer the frame were read")
        return try self.skip(
            &buffer, from: newline - view.startIndex + 1,
            Skipping(frame: frame, escaped: command != "CONNECT" && command != "CONNECTED", phase: .headers(line: [], length: 0))
        )
    }

    /// The body of the frame whose headers are `head`, starting `bodyStart` bytes into the
    /// buffer: by `content-length` when given, else up to the first NUL. A body over the limit is
    /// passed over (or, when it is all here, dropped) and named in the frame's problem.
    private mutating func body(of head: StompFrame, escaped: Bool, at bodyStart: Int, in buffer: inout ByteBuffer) throws -> StompFrame? {
        let view = buffer.readableBytesView
        func over(_ reason: String) -> StompFrame {
            StompFrame(command: head.command, headers: head.headers, problem: [head.problem, reason].compactMap { $0 }.joined(separator: "; "))
        }
        let body: [UInt8]
        let frameLength: Int
        if let lengthHeader = head[header: "content-length"] {
            guard let length = Int(lengthHeader), length >= 0 else { throw StompProtocolError(reason: "bad content-length '\(lengthHeader)'") }
            guard length <= self.maxBodyBytes else {
                let frame = over("body of \(length) bytes is over the limit of \(self.maxBodyBytes)")
                return try self.skip(&buffer, from: bodyStart, Skipping(frame: frame, escaped: escaped, phase: .body(remaining: length + 1)))
            }
            guard view.count >= bodyStart + length + 1 else { return nil }
            guard view[view.startIndex + bodyStart + length] == 0 else { throw StompProtocolError(reason: "frame body not followed by NUL") }
            body = Array(view[(view.startIndex + bodyStart)..<(view.startIndex + bodyStart + length)])
            frameLength = bodyStart + length + 1
        } else {
            guard let nul = view[(view.startIndex + bodyStart)...].firstIndex(of: 0) else {
                guard view.count - bodyStart > self.maxBodyBytes else { return nil }
                let frame = over("body over the limit of \(self.maxBodyBytes) bytes")
                return try self.skip(&buffer, from: bodyStart, Skipping(frame: frame, escaped: escaped, phase: .body(remaining: nil)))
            }
            frameLength = nul - view.startIndex + 1
            guard nul - (view.startIndex + bodyStart) <= self.maxBodyBytes else {
                // Whole already, but as over the limit as when it trickles in.
                buffer.moveReaderIndex(forwardBy: frameLength)
                self.scanned = 0
                return over("body over the limit of \(self.maxBodyBytes) bytes")
            }
            body = Array(view[(view.startIndex + bodyStart)..<nul])
        }
        buffer.moveReaderIndex(forwardBy: frameLength)
        self.scanned = 0
        return StompFrame(command: head.command, headers: head.headers, body: body, problem: head.problem)
    }

    /// Moves past the first `offset` bytes and passes over the rest of the frame `skipping`
    /// describes, as it arrives.
    private mutating func skip(_ buffer: inout ByteBuffer, from offset: Int, _ skipping: Skipping) throws -> StompFrame? {
        buffer.moveReaderIndex(forwardBy: offset)
        self.scanned = 0
        self.skipping = skipping
        return try self.passOver(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> StompFrame? {
        if let frame = try self.decode(buffer: &buffer) { return frame }
        // Trailing heart-beats are fine; half a frame is not.
        if self.skipping != nil || buffer.readableBytesView.contains(where: { $0 != 0x0A && $0 != 0x0D }) {
            throw StompProtocolError(reason: "connection closed in the middle of a frame")
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return nil
    }

    /// Consumes the bytes of the frame being passed over; answers it once its NUL is read.
    private mutating func passOver(_ buffer: inout ByteBuffer) throws -> StompFrame? {
        while var skipping = self.skipping {
            let view = buffer.readableBytesView
            guard !view.isEmpty else { return nil }
            switch skipping.phase {
            case .headers(var line, var length):
                let newline = view.firstIndex(of: 0x0A)
                let part = view[view.startIndex..<(newline ?? view.endIndex)]
                line.append(contentsOf: part.prefix(max(0, Self.keptLineBytes + 1 - line.count)))
                length += part.count
                buffer.moveReaderIndex(forwardBy: part.count + (newline == nil ? 0 : 1))
                guard newline != nil else {
                    skipping.phase = .headers(line: line, length: length)
                    self.skipping = skipping
                    return nil
                }
                if line.last == 0x0D {
                    line.removeLast()
                    length -= 1
                }
                if length == 0 {
                    // The blank line: the body follows, by its length when that was kept.
                    let contentLength = skipping.frame[header: "content-length"].flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil }
                    skipping.phase = .body(remaining: contentLength.map { $0 + 1 })
                } else {
                    if length <= Self.keptLineBytes, case .success(let header) = Self.header(line[...], escaped: skipping.escaped),
                        Self.answeringHeaders.contains(header.0), skipping.frame[header: header.0] == nil
                    {
                        skipping.frame.headers.append(header)
                    }
                    skipping.phase = .headers(line: [], length: 0)
                }
                self.skipping = skipping
            case .body(let remaining?):
                let take = min(remaining, view.count)
                if take == remaining {
                    guard view[view.startIndex + take - 1] == 0 else { throw StompProtocolError(reason: "frame body not followed by NUL") }
                    buffer.moveReaderIndex(forwardBy: take)
                    self.skipping = nil
                    return skipping.frame
                }
                buffer.moveReaderIndex(forwardBy: take)
                skipping.phase = .body(remaining: remaining - take)
                self.skipping = skipping
                return nil
            case .body(nil):
                guard let nul = view.firstIndex(of: 0) else {
                    buffer.moveReaderIndex(forwardBy: view.count)
                    return nil
                }
                buffer.moveReaderIndex(forwardBy: nul - view.startIndex + 1)
                self.skipping = nil
                return skipping.frame
            }
        }
        return nil
    }

    /// A frame's command line: an upper-case word (anything else is a broken stream; found by
    /// the fuzz tests: a stray NUL or CR would otherwise become part of a "command").
    private static func command(_ line: some BidirectionalCollection<UInt8>) throws -> String {
        let bytes = line.last == 0x0D ? Array(line.dropLast()) : Array(line)
        guard !bytes.isEmpty else { throw StompProtocolError(reason: "frame without a command") }
        let command = String(decoding: bytes, as: UTF8.self)
        guard bytes.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else {
            throw StompProtocolError(reason: "malformed command \(String(reflecting: command))")
        }
        return command
    }

    /// One `name:value` header line (a CR before its line end dropped), unescaped unless in
    /// CONNECT or CONNECTED.
    ///
    /// Read as bytes, never as Characters: every byte the spec names (`:`, `\`, CR, LF) is
    /// ASCII, which UTF-8 never uses inside another character, and walking Characters (grapheme
    /// breaking) was the STOMP initiator's busiest work in benchmark 5's profile.
    private static func header(_ line: some BidirectionalCollection<UInt8>, escaped: Bool) -> Result<(String, String), StompProtocolError> {
        let bytes = line.last == 0x0D ? line.dropLast() : line[...]
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return .failure(StompProtocolError(reason: "header line without ':'")) }
        let name = bytes[..<colon]
        let value = bytes[bytes.index(after: colon)...]
        guard escaped else { return .success((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))) }
        do throws(StompProtocolError) {
            return .success((try Self.unescape(name), try Self.unescape(value)))
        } catch {
            return .failure(error)
        }
    }

    /// The text of a header name or value with its escapes (`\r \n \c \\`) resolved.
    private static func unescape(_ bytes: some Collection<UInt8>) throws(StompProtocolError) -> String {
        guard bytes.contains(UInt8(ascii: "\\")) else { return String(decoding: bytes, as: UTF8.self) }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                continue
            }
            switch iterator.next() {
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "c"): result.append(UInt8(ascii: ":"))
            case UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\"))
            case let other:
                // The escape named as the text has it (a multi-byte character whole).
                let rest = other.map { first in [first] + Array(IteratorSequence(iterator).prefix(3)) } ?? []
                let named = String(decoding: rest, as: UTF8.self).first.map(String.init) ?? ""
                throw StompProtocolError(reason: "undefined escape '\\\(named)' in header")
            }
        }
        return String(decoding: result, as: UTF8.self)
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
            Self.write(name, escaped: escape, to: &out)
            out.writeInteger(UInt8(ascii: ":"))
            Self.write(value, escaped: escape, to: &out)
            out.writeInteger(UInt8(0x0A))
        }
        if !frame.body.isEmpty || frame.command == "SEND" || frame.command == "MESSAGE" {
            out.writeStaticString("content-length:")
            out.writeString(String(frame.body.count))
            out.writeInteger(UInt8(0x0A))
        }
        out.writeInteger(UInt8(0x0A))
        out.writeBytes(frame.body)
        out.writeInteger(UInt8(0))
    }

    /// Writes a header name or value, escaped unless `escaped` is false: byte by byte, the
    /// escaped bytes being ASCII (see the decoder's `header`).
    private static func write(_ text: String, escaped: Bool, to out: inout ByteBuffer) {
        guard escaped, text.utf8.contains(where: Self.needsEscape) else {
            out.writeString(text)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.writeStaticString("\\\\")
            case UInt8(ascii: ":"): out.writeStaticString("\\c")
            case 0x0A: out.writeStaticString("\\n")
            case 0x0D: out.writeStaticString("\\r")
            default: out.writeInteger(byte)
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: ":") || byte == 0x0A || byte == 0x0D
    }
}
