public import SkyLib
import RegistryKit

/// A BSON document to send, with its keys in order (a command's name must come first, which a
/// `[String: JSONValue]` cannot promise), written as MongoDB extended JSON for `bson_new_from_json`.
public struct MongoDocument: Sendable, ExpressibleByArrayLiteral {
    /// Keys and values, in the order they are written.
    public var fields: [(String, MongoValue)]

    /// Creates a `MongoDocument` from its parts.
    public init(_ fields: [(String, MongoValue)]) {
        self.fields = fields
    }

    /// Creates a `MongoDocument` from its parts.
    public init(arrayLiteral elements: (String, MongoValue)...) {
        self.fields = elements
    }

    /// Canonical extended JSON text.
    public var extendedJSON: String {
        var bytes: [UInt8] = []
        self.append(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the document as extended JSON text, keys in the order given: libmongoc parses it
    /// into BSON (`bson_new_from_json`), and commands care about their first key.
    func append(to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        for (index, (key, value)) in self.fields.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(key, to: &bytes, asciiOnly: false)
            bytes.append(UInt8(ascii: ":"))
            value.append(to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}

/// A value inside a ``MongoDocument``: plain JSON, a nested ordered document, an array, or a
/// BSON date (which TTL indexes need).
public indirect enum MongoValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByFloatLiteral {
    /// A JSON value, written as it is.
    case json(JSONValue)
    /// A document whose key order matters (a command, an update).
    case document(MongoDocument)
    /// An array of values that may be documents.
    case array([MongoValue])
    /// Milliseconds since 1970.
    case date(Int64)

    /// Creates a `MongoValue` from its parts.
    public init(stringLiteral value: String) { self = .json(.string(value)) }
    /// Creates a `MongoValue` from its parts.
    public init(integerLiteral value: Int64) { self = .json(.int(value)) }
    /// Creates a `MongoValue` from its parts.
    public init(booleanLiteral value: Bool) { self = .json(.bool(value)) }
    /// Creates a `MongoValue` from its parts.
    public init(floatLiteral value: Double) { self = .json(.double(value)) }

    /// Appends the value as extended JSON: a whole double as `$numberDouble` (written plainly,
    /// BSON would store `3.0` as an integer and a later comparison would change type), a date
    /// as `$date`.
    func append(to bytes: inout [UInt8]) {
        switch self {
        case .json(.double(let number)) where number.rounded() == number && abs(number) < 1e15:
            // Keep doubles doubles: "3.0", not "3", so BSON types stay stable.
            bytes.append(contentsOf: "{\"$numberDouble\":\"\(number)\"}".utf8)
        case .json(let value): JSONWriter.append(value, to: &bytes)
        case .document(let document): document.append(to: &bytes)
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                value.append(to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .date(let milliseconds):
            bytes.append(contentsOf: "{\"$date\":{\"$numberLong\":\"\(milliseconds)\"}}".utf8)
        }
    }
}
