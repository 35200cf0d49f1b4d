/// Accounts for every input of a test run: each expected id must end in exactly one place
/// (answered, rejected, parked, dead-lettered …). Missing ids are losses; ids seen more than
/// once are duplicates (allowed only where delivery is at-least-once, and then reported);
/// ids nobody sent are a bug of their own.
public struct Ledger: Sendable, CustomStringConvertible {
    public let expected: Set<String>
    /// Where each id was found, in the order recorded.
    public private(set) var places: [String: [String]] = [:]

    public init<IDs: Sequence<String>>(expecting ids: IDs) {
        self.expected = Set(ids)
    }

    /// Records that `id` was found in `place` (say "answers", "rejects", "dead letters").
    public mutating func found(_ id: String, in place: String) {
        self.places[id, default: []].append(place)
    }

    public mutating func found<IDs: Sequence<String>>(_ ids: IDs, in place: String) {
        for id in ids { self.found(id, in: place) }
    }

    /// Expected ids found nowhere: lost.
    public var missing: [String] { self.expected.subtracting(self.places.keys).sorted() }
    /// Ids found more than once, with how many times.
    public var duplicates: [String: Int] { self.places.filter { $0.value.count > 1 }.mapValues(\.count) }
    /// Ids found that were never sent.
    public var unexpected: [String] { Set(self.places.keys).subtracting(self.expected).sorted() }
    /// How many ids ended in `place` (each id once, at its first place).
    public func count(in place: String) -> Int { self.places.values.filter { $0.first == place }.count }

    /// Every id accounted for exactly once.
    public var isExact: Bool { self.missing.isEmpty && self.duplicates.isEmpty && self.unexpected.isEmpty }
    /// Every id accounted for, duplicates allowed (at-least-once).
    public var isComplete: Bool { self.missing.isEmpty && self.unexpected.isEmpty }

    public var description: String {
        let places = Set(self.places.values.compactMap(\.first)).sorted().map { "\($0) \(self.count(in: $0))" }
        return "ledger: \(self.expected.count) sent; " + places.joined(separator: ", ")
            + "; missing \(self.missing.count)\(self.missing.isEmpty ? "" : " (e.g. \(self.missing.prefix(5).joined(separator: ", ")))")"
            + "; duplicated \(self.duplicates.count); unexpected \(self.unexpected.count)"
    }
}
