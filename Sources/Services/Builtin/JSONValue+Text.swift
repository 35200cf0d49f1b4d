import Foundation
import SkyLib

/// What the text services do to a document: transform its strings, wherever they are.
extension JSONValue {
    /// The same document with `transform` applied to every string value.
    func mappingStrings(_ transform: (String) -> String) -> JSONValue {
        switch self {
        case .string(let string): .string(transform(string))
        case .array(let elements): .array(elements.map { $0.mappingStrings(transform) })
        case .object(let fields): .object(fields.mapValues { $0.mappingStrings(transform) })
        default: self
        }
    }
}

extension JSONValue {
    /// An integer from a number or from a string of digits (CSV fields are strings).
    var looseInt: Int? {
        if let value = self.intValue { return Int(value) }
        return self.stringValue.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }
}
