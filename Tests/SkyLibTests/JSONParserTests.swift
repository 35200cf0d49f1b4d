import Foundation
import NIOCore
import Testing

@testable import SkyLib

struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#" {"a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}, "e": 0} "#)
        #expect(value == [
            "a": [1, -2.5, 300.0, true, false, nil],
            "b": ["c": "d\né😀"],
            "e": 0,
        ])
    }

    @Test func keepsIntegersApartFromDoubles() throws {
        #expect(try JSONParser.parse("3") == .int(3))
        #expect(try JSONParser.parse("3.0") == .double(3))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(.min))
        // Too large for Int64: kept as a double rather than rejected.
        #expect(try JSONParser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
    }

    @Test(arguments: [
        ("{\"a\": 1,,}", 1, 9, "expected a string key"),
        ("{\"a\" 1}", 1, 6, "expected ':'"),
        ("[1, 2", 1, 6, "unexpected end of input"),
        ("{\n  \"a\": tru\n}", 2, 8, "invalid literal"),
        ("\"abc", 1, 1, "unterminated string"),
        ("01", 1, 2, "leading zero"),
        ("1.", 1, 3, "expected a digit after '.'"),
        ("[1] x", 1, 5, "after the JSON document"),
        ("\"a\\qb\"", 1, 3, "invalid escape"),
        ("\"\\ud800\"", 1, 8, "unpaired surrogate"),
        ("", 1, 1, "expected a value"),
    ])
    func reportsWhereAndWhy(input: String, line: Int, column: Int, reason: String) {
        #expect {
            _ = try JSONParser.parse(input)
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.line == line && error.column == column && error.reason.contains(reason)
        }
    }

    @Test func rejectsInvalidUTF8AndControlCharacters() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\"")]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("\"a\u{01}b\"") }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try JSONParser.parse(fine)
    }

    @Test func writerEscapesAndSortsKeys() {
        let value: JSONValue = ["b": "quote\" slash\\ nl\n tab\t ctl\u{01}", "a": [1, 2.5, nil, true]]
        #expect(JSONWriter.string(value) == #"{"a":[1,2.5,null,true],"b":"quote\" slash\\ nl\n tab\t ctl\u0001"}"#)
        #expect(JSONWriter.string(["k": "é😀"], asciiOnly: true) == #"{"k":"\u00e9\ud83d\ude00"}"#)
    }

    /// Integers are written digit by digit (no `String` in between): the extremes too.
    @Test(arguments: [Int64.min, Int64.min + 1, -10, -1, 0, 7, 10, 99, 100, 1_234_567_890, Int64.max])
    func writerWritesIntegersAsSwiftDoes(_ number: Int64) {
        #expect(JSONWriter.string(.int(number)) == String(number))
    }

    /// Random documents, written by our writer, must read back the same through our parser and
    /// mean the same to Foundation's JSONSerialization (the reference implementation).
    @Test func agreesWithFoundationOnRandomDocuments() throws {
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<300 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let text = JSONWriter.string(value)
            #expect(try JSONParser.parse(text) == value)
            let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            let reserialized = try JSONSerialization.data(withJSONObject: foundation, options: [.fragmentsAllowed, .sortedKeys])
            #expect(Self.normalized(try JSONParser.parse(reserialized)) == Self.normalized(value))
        }
    }

    static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .int(let number): .double(Double(number))
        case .double: value
        case .array(let elements): .array(elements.map(normalized))
        case .object(let fields): .object(fields.mapValues(normalized))
        case .bool(let flag): .double(flag ? 1 : 0)  // Foundation reads booleans back as numbers
        default: value
        }
    }

    static func randomValue(depth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let pick = Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int64.random(in: -1_000_000...1_000_000, using: &generator))
        case 3: return .double(Double(Int.random(in: -10000...10000, using: &generator)) / 64)
        case 4:
            let alphabet = Array("abc xyz\"\\/\n\t\u{01}é😀中")
            return .string(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        case 5: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var fields: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...4, using: &generator) { fields["k\(index)"] = randomValue(depth: depth + 1, using: &generator) }
            return .object(fields)
        }
    }
}

/// A deterministic generator, so a failing random case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
