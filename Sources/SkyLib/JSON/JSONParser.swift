/// A strict RFC 8259 JSON parser from UTF-8 bytes to ``JSONValue``.
///
/// Written for the request hot path: it reads bytes straight from the network buffer, makes no
/// intermediate `Any` values, and reports errors with the line and column a person can find.
/// Nesting is limited so hostile input cannot exhaust the stack.
public struct JSONParser {
    /// Deepest nesting of arrays and objects accepted.
    public static let maxDepth = 256

    /// Parses one JSON document; whitespace may surround it, nothing else may follow it.
    /// - Throws: ``JSONParseError`` naming the line, column and what was expected.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Self.parse(buffer: UnsafeRawBufferPointer(buffer))
        }
        switch result ?? Array(bytes).withUnsafeBytes({ Self.parse(buffer: $0) }) {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }

    /// Parses a JSON document held in a string.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { Self.parse(buffer: UnsafeRawBufferPointer($0)) }
        switch result {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }

    static func parse(buffer: UnsafeRawBufferPointer) -> Result<JSONValue, JSONParseError> {
        var parser = Reader(bytes: buffer)
        do throws(JSONParseError) {
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            if parser.index < buffer.count {
                throw parser.error("unexpected '\(parser.printable(buffer[parser.index]))' after the JSON document")
            }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func error(_ reason: String, at offset: Int? = nil) -> JSONParseError {
            let offset = min(offset ?? self.index, self.bytes.count)
            var line = 1
            var column = 1
            for byte in self.bytes[0..<offset] {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else if byte & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return JSONParseError(reason: reason, line: line, column: column, offset: offset)
        }

        func printable(_ byte: UInt8) -> String {
            if byte >= 0x20 && byte < 0x7F { return String(UnicodeScalar(byte)) }
            return "\\u{\(String(byte, radix: 16))}"
        }

        mutating func skipWhitespace() {
            while self.index < self.bytes.count {
                switch self.bytes[self.index] {
                case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard self.index < self.bytes.count else { throw self.error("unexpected end of input, expected a value") }
            switch self.bytes[self.index] {
            case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try self.parseString())
            case UInt8(ascii: "t"): try self.expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try self.expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try self.expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try self.parseNumber()
            case let byte: throw self.error("unexpected '\(self.printable(byte))', expected a value")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard self.index + count <= self.bytes.count else { throw self.error("invalid literal, expected '\(literal)'") }
            for offset in 0..<count where self.bytes[self.index + offset] != literal.utf8Start[offset] {
                throw self.error("invalid literal, expected '\(literal)'")
            }
            self.index += count
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= JSONParser.maxDepth else { throw self.error("nesting deeper than \(JSONParser.maxDepth)") }
            self.index += 1
            var fields: [String: JSONValue] = [:]
            self.skipWhitespace()
            if self.index < self.bytes.count && self.bytes[self.index] == UInt8(ascii: "}") {
                self.index += 1
                return .object(fields)
            }
            while true {
                self.skipWhitespace()
                guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                    throw self.error(self.index < self.bytes.count ? "expected a string key in object" : "unexpected end of input in object")
                }
                let key = try self.parseString()
                self.skipWhitespace()
                guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ":") else {
                    throw self.error("expected ':' after object key \"\(key)\"")
                }
                self.index += 1
                self.skipWhitespace()
                fields[key] = try self.parseValue(depth: depth)
                self.skipWhitespace()
                guard self.index < self.bytes.count else { throw self.error("unexpected end of input in object") }
                switch self.bytes[self.index] {
                case UInt8(ascii: ","): self.index += 1
                case UInt8(ascii: "}"): self.index += 1; return .object(fields)
                default: throw self.error("expected ',' or '}' in object")
                }
            }
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= JSONParser.maxDepth else { throw self.error("nesting deeper than \(JSONParser.maxDepth)") }
            self.index += 1
            var elements: [JSONValue] = []
            self.skipWhitespace()
            if self.index < self.bytes.count && self.bytes[self.index] == UInt8(ascii: "]") {
                self.index += 1
                return .array(elements)
            }
            while true {
                self.skipWhitespace()
                elements.append(try self.parseValue(depth: depth))
                self.skipWhitespace()
                guard self.index < self.bytes.count else { throw self.error("unexpected end of input in array") }
                switch self.bytes[self.index] {
                case UInt8(ascii: ","): self.index += 1
                case UInt8(ascii: "]"): self.index += 1; return .array(elements)
                default: throw self.error("expected ',' or ']' in array")
                }
            }
        }

        mutating func parseString() throws(JSONParseError) -> String {
            let start = self.index
            self.index += 1
            let contentStart = self.index
            // Fast path: no escapes, so the bytes are the string.
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeRawBufferPointer(rebasing: self.bytes[contentStart..<self.index])
                    self.index += 1
                    guard let string = String(validating: slice, as: UTF8.self) else {
                        throw self.error("invalid UTF-8 in string", at: start)
                    }
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw self.error("control character in string (escape it)") }
                self.index += 1
            }
            var utf8 = Array(self.bytes[contentStart..<self.index])
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                switch byte {
                case UInt8(ascii: "\""):
                    self.index += 1
                    guard let string = String(validating: utf8, as: UTF8.self) else {
                        throw self.error("invalid UTF-8 in string", at: start)
                    }
                    return string
                case UInt8(ascii: "\\"):
                    self.index += 1
                    guard self.index < self.bytes.count else { break }
                    let escaped = self.bytes[self.index]
                    self.index += 1
                    switch escaped {
                    case UInt8(ascii: "\""): utf8.append(0x22)
                    case UInt8(ascii: "\\"): utf8.append(0x5C)
                    case UInt8(ascii: "/"): utf8.append(0x2F)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try self.parseHex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate must be followed by an escaped low surrogate.
                            guard self.index + 1 < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
                                self.bytes[self.index + 1] == UInt8(ascii: "u")
                            else { throw self.error("unpaired surrogate in \\u escape") }
                            self.index += 2
                            let low = try self.parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw self.error("unpaired surrogate in \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            throw self.error("unpaired surrogate in \\u escape")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw self.error("invalid \\u escape") }
                        utf8.append(contentsOf: Unicode.UTF8.encode(unicode)!)
                    default:
                        throw self.error("invalid escape '\\\(self.printable(escaped))' in string", at: self.index - 2)
                    }
                default:
                    if byte < 0x20 { throw self.error("control character in string (escape it)") }
                    utf8.append(byte)
                    self.index += 1
                }
            }
            throw self.error("unterminated string", at: start)
        }

        mutating func parseHex4() throws(JSONParseError) -> UInt32 {
            guard self.index + 4 <= self.bytes.count else { throw self.error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = self.bytes[self.index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw self.error("invalid hex digit in \\u escape")
                }
                value = value << 4 | UInt32(digit)
                self.index += 1
            }
            return value
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONValue {
            let start = self.index
            var isInteger = true
            if self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
            guard self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) else {
                throw self.error("invalid number: expected a digit")
            }
            if self.bytes[self.index] == UInt8(ascii: "0") {
                self.index += 1
                if self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) {
                    throw self.error("invalid number: leading zero")
                }
            } else {
                while self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) { self.index += 1 }
            }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
                isInteger = false
                self.index += 1
                guard self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) else {
                    throw self.error("invalid number: expected a digit after '.'")
                }
                while self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) { self.index += 1 }
            }
            if self.index < self.bytes.count, self.bytes[self.index] | 0x20 == UInt8(ascii: "e") {
                isInteger = false
                self.index += 1
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") {
                    self.index += 1
                }
                guard self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) else {
                    throw self.error("invalid number: expected a digit in exponent")
                }
                while self.index < self.bytes.count, self.isDigit(self.bytes[self.index]) { self.index += 1 }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
            if isInteger, let value = Int64(text) { return .int(value) }
            guard let value = Double(text), value.isFinite else { throw self.error("number out of range", at: start) }
            return .double(value)
        }

        @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    }
}

/// Why a JSON document could not be parsed, and where.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong, in words.
    public var reason: String
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column (in characters) of the problem.
    public var column: Int
    /// 0-based byte offset of the problem.
    public var offset: Int

    public var description: String { "\(self.reason) at line \(self.line), column \(self.column)" }
}
