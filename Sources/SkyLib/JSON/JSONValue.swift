/// A JSON document as a Swift value.
///
/// Every document that flows through a route is a `JSONValue`: the HTTP initiator parses the
/// request body into one, in-process services read and return one, and only calls that cross a
/// socket encode it again. Integers and doubles are kept apart so `3` stays `3` on the way out.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    /// The object's fields, or `nil` when the value is not an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    /// The array's elements, or `nil` when the value is not an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The string, or `nil` when the value is not a string.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The number as an `Int64` when it is an integer (or a double with no fraction).
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9e18: return Int64(value)
        default: return nil
        }
    }

    /// The number as a `Double`, whatever its JSON spelling.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The boolean, or `nil` when the value is not a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The field `key` of an object; `nil` for a missing field or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        get { self.objectValue?[key] }
        set {
            guard case .object(var fields) = self else { return }
            fields[key] = newValue
            self = .object(fields)
        }
    }

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// Creates a `JSONValue` from its parts.
    public init(stringLiteral value: String) { self = .string(value) }
    /// Creates a `JSONValue` from its parts.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// Creates a `JSONValue` from its parts.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Creates a `JSONValue` from its parts.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// Creates a `JSONValue` from its parts.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Creates a `JSONValue` from its parts.
    public init(nilLiteral: ()) { self = .null }
    /// Creates a `JSONValue` from its parts.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text of the value, keys sorted.
    public var description: String { JSONWriter.string(self) }
}
