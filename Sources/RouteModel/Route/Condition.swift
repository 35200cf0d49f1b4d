public import SkyLib
import Foundation

/// A condition on the document, for `when:` and `choice:` (`{path, equals}`, `{path, in}`,
/// `{path, exists}`, `{path, matches}`, `{path, gt|gte|lt|lte}`, `{all}`, `{any}`, `{not}`).
///
/// Paths are dotted (`order.items.0.sku`): a name looks up an object's key, a whole number an
/// array's index. A value that is missing, or of another type than the test needs, makes the
/// test false (never an error at run time: every mistake that can be caught is caught when the
/// file loads). `equals` and `in` compare JSON values, numbers by value (`1` equals `1.0`);
/// `matches` is a regular expression (ICU syntax) that must match the whole string; `exists`
/// is true for any value but `null`.
public indirect enum Condition: Sendable, Hashable {
    /// The value at `path` is present and not `null` (or, with `false`, is not).
    case exists(DocumentPath, Bool)
    /// The value at `path` equals this one.
    case equals(DocumentPath, JSONValue)
    /// The value at `path` equals one of these.
    case isIn(DocumentPath, [JSONValue])
    /// The string at `path` matches the whole pattern.
    case matches(DocumentPath, Pattern)
    /// The number at `path` compares so with this one.
    case compare(DocumentPath, Comparison, Double)
    /// Every condition holds (true when empty).
    case all([Condition])
    /// At least one condition holds (false when empty).
    case any([Condition])
    /// The condition does not hold.
    case not(Condition)

    /// A number comparison.
    public enum Comparison: String, Sendable, Hashable, CaseIterable {
        /// Greater than.
        case gt
        /// Greater than or equal.
        case gte
        /// Less than.
        case lt
        /// Less than or equal.
        case lte
    }

    /// Whether the condition holds for `document`.
    public func holds(for document: JSONValue) -> Bool {
        switch self {
        case .exists(let path, let expected):
            let value = path.value(in: document)
            return (value != nil && value != .null) == expected
        case .equals(let path, let expected):
            return path.value(in: document).map { Self.same($0, expected) } ?? false
        case .isIn(let path, let candidates):
            guard let value = path.value(in: document) else { return false }
            return candidates.contains { Self.same(value, $0) }
        case .matches(let path, let pattern):
            guard let text = path.value(in: document)?.stringValue else { return false }
            return pattern.matchesWhole(text)
        case .compare(let path, let comparison, let bound):
            guard let number = path.value(in: document).flatMap(Self.numeric) else { return false }
            switch comparison {
            case .gt: return number > bound
            case .gte: return number >= bound
            case .lt: return number < bound
            case .lte: return number <= bound
            }
        case .all(let conditions):
            return conditions.allSatisfy { $0.holds(for: document) }
        case .any(let conditions):
            return conditions.contains { $0.holds(for: document) }
        case .not(let condition):
            return !condition.holds(for: document)
        }
    }

    private static func numeric(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    /// JSON equality, numbers by value.
    static func same(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        if let left = Self.numeric(lhs), let right = Self.numeric(rhs) { return left == right }
        return lhs == rhs
    }

    /// Text for messages and `GET /routes`.
    public var description: String {
        switch self {
        case .exists(let path, let expected): "\(path) \(expected ? "exists" : "is missing")"
        case .equals(let path, let value): "\(path) = \(JSONWriter.string(value))"
        case .isIn(let path, let values): "\(path) in \(JSONWriter.string(.array(values)))"
        case .matches(let path, let pattern): "\(path) matches /\(pattern.source)/"
        case .compare(let path, let comparison, let bound):
            "\(path) \(["gt": ">", "gte": ">=", "lt": "<", "lte": "<="][comparison.rawValue] ?? "?") \(bound.formatted())"
        case .all(let conditions): "(" + conditions.map(\.description).joined(separator: " and ") + ")"
        case .any(let conditions): "(" + conditions.map(\.description).joined(separator: " or ") + ")"
        case .not(let condition): "not \(condition.description)"
        }
    }
}

/// A dotted path into a JSON document (`order.items.0.sku`).
public struct DocumentPath: Sendable, Hashable, CustomStringConvertible {
    /// The segments: keys, or array indexes written as whole numbers.
    public var segments: [String]

    /// Parses `text`; `nil` when it is empty or has an empty segment (`a..b`, `.a`).
    public init?(_ text: String) {
        let segments = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, !segments.contains(where: \.isEmpty) else { return nil }
        self.segments = segments
    }

    /// The value at this path in `document`, or `nil` when there is none.
    public func value(in document: JSONValue) -> JSONValue? {
        var current = document
        for segment in self.segments {
            switch current {
            case .object(let fields):
                guard let next = fields[segment] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(segment), items.indices.contains(index) else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }

    public var description: String { self.segments.joined(separator: ".") }
}

/// A regular expression compiled once, when the route loads.
public struct Pattern: Sendable, Hashable {
    /// The pattern as written.
    public let source: String
    private let box: Box

    /// Compiles `source`; throws the compiler's reason when it is not a valid pattern.
    public init(_ source: String) throws {
        self.source = source
        _ = try NSRegularExpression(pattern: source)
        // Anchored as a whole: `a|ab` must match "ab", which a search from the start would not.
        self.box = Box(try NSRegularExpression(pattern: "^(?:" + source + ")$"))
    }

    /// Whether the pattern matches all of `text`.
    public func matchesWhole(_ text: String) -> Bool {
        self.box.expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Equal when written the same.
    public static func == (lhs: Pattern, rhs: Pattern) -> Bool { lhs.source == rhs.source }
    /// Hashes the pattern as written.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.source) }

    /// NSRegularExpression is immutable and documented as safe to use from many threads.
    private final class Box: @unchecked Sendable {
        let expression: NSRegularExpression
        init(_ expression: NSRegularExpression) { self.expression = expression }
    }
}
