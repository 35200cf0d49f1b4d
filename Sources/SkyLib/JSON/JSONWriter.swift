public import NIOCore

/// Writes ``JSONValue``s as compact JSON with sorted keys.
///
/// Sorted keys make answers deterministic (tests, diffs, caches) at a small cost.
public enum JSONWriter {
    /// Appends the JSON text of `value` to `buffer`.
    /// - Parameters:
    ///   - value: the document to write.
    ///   - buffer: where its text goes.
    ///   - asciiOnly: escape every non-ASCII character, for HTTP header values.
    public static func write(_ value: JSONValue, into buffer: inout ByteBuffer, asciiOnly: Bool = false) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        Self.append(value, to: &bytes, asciiOnly: asciiOnly)
        buffer.writeBytes(bytes)
    }

    /// The JSON text of `value` in a new buffer.
    public static func buffer(_ value: JSONValue, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        Self.append(value, to: &bytes, asciiOnly: false)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    /// The JSON text of `value` as a string.
    public static func string(_ value: JSONValue, asciiOnly: Bool = false) -> String {
        var bytes: [UInt8] = []
        Self.append(value, to: &bytes, asciiOnly: asciiOnly)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the JSON text of `value` to a byte array.
    public static func append(_ value: JSONValue, to bytes: inout [UInt8], asciiOnly: Bool = false) {
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number): Self.appendInteger(number, to: &bytes)
        case .double(let number):
            if number.isFinite {
                bytes.append(contentsOf: number.description.utf8)
            } else {
                bytes.append(contentsOf: "null".utf8)
            }
        case .string(let string): Self.appendString(string, to: &bytes, asciiOnly: asciiOnly)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.append(element, to: &bytes, asciiOnly: asciiOnly)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let fields):
            Self.appendSorted(fields, to: &bytes, asciiOnly: asciiOnly) { value, bytes in Self.append(value, to: &bytes, asciiOnly: asciiOnly) }
        }
    }

    /// Appends `fields` as a JSON object, keys sorted, each value written by `writeValue`
    /// (inlined, so each caller's closure is too: answers are written through here).
    @inline(__always)
    private static func appendSorted<Value>(
        _ fields: [String: Value], to bytes: inout [UInt8], asciiOnly: Bool, writeValue: (Value, inout [UInt8]) -> Void
    ) {
        bytes.append(UInt8(ascii: "{"))
        // The fields' positions, sorted by key, in scratch space on the stack: a sorted
        // copy of the pairs was two allocations per answer in the CSV profile.
        withUnsafeTemporaryAllocation(of: [String: Value].Index.self, capacity: fields.count) { scratch in
            var order = scratch
            var count = 0
            for position in fields.indices {
                order.initializeElement(at: count, to: position)
                count += 1
            }
            order.sort { fields[$0].key < fields[$1].key }
            for (index, position) in order.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                let field = fields[position]
                Self.appendString(field.key, to: &bytes, asciiOnly: asciiOnly)
                bytes.append(UInt8(ascii: ":"))
                writeValue(field.value, &bytes)
            }
            order.deinitialize()
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Appends `fields` as a JSON object of strings, keys sorted, as ``append(_:to:asciiOnly:)``
    /// writes the same fields as a ``JSONValue`` object: without making that object first.
    public static func appendStrings(_ fields: [String: String], to bytes: inout [UInt8]) {
        Self.appendSorted(fields, to: &bytes, asciiOnly: false) { value, bytes in Self.appendString(value, to: &bytes, asciiOnly: false) }
    }

    /// Appends `"key":` (a field's name and its colon), after a comma unless it is the first.
    @inlinable
    public static func appendKey(_ key: StaticString, first: Bool = false, to bytes: inout [UInt8]) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    /// Appends the decimal digits of `number`, as a ``JSONValue/int(_:)`` is written.
    public static func appendInt(_ number: Int64, to bytes: inout [UInt8]) {
        Self.appendInteger(number, to: &bytes)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `string` as a JSON string literal, quoted and escaped (the MongoDB driver writes
    /// its ordered documents with it); `asciiOnly` escapes everything beyond ASCII as `\uXXXX`.
    public static func appendString(_ string: String, to bytes: inout [UInt8], asciiOnly: Bool) {
        bytes.append(UInt8(ascii: "\""))
        if asciiOnly {
            for unit in string.utf16 {
                if unit < 0x80 {
                    Self.appendEscaped(UInt8(unit), to: &bytes)
                } else {
                    Self.appendUnicodeEscape(unit, to: &bytes)
                }
            }
        } else {
            var utf8 = string.utf8
            // Most strings need no escape: copied whole (a CSV row's answer is mostly strings).
            let copied = utf8.withContiguousStorageIfAvailable { buffer -> Bool in
                guard !buffer.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
                bytes.append(contentsOf: buffer)
                return true
            }
            if copied != true {
                utf8 = string.utf8
                for byte in utf8 { Self.appendEscaped(byte, to: &bytes) }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends the decimal digits of `number` without making a `String` first.
    private static func appendInteger(_ number: Int64, to bytes: inout [UInt8]) {
        if number < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    @inline(__always)
    private static func appendEscaped(_ byte: UInt8, to bytes: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0..<0x20, 0x7F: Self.appendUnicodeEscape(UInt16(byte), to: &bytes)
        default: bytes.append(byte)
        }
    }

    private static func appendUnicodeEscape(_ unit: UInt16, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: [0x5C, UInt8(ascii: "u")])
        bytes.append(Self.hexDigits[Int(unit >> 12) & 0xF])
        bytes.append(Self.hexDigits[Int(unit >> 8) & 0xF])
        bytes.append(Self.hexDigits[Int(unit >> 4) & 0xF])
        bytes.append(Self.hexDigits[Int(unit) & 0xF])
    }
}
