/// A domain name as labels, compared without regard to ASCII case (RFC 4343).
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// The labels, first (leftmost) first, as received.
    public var labels: [String]

    /// Creates a `DNSName` from labels.
    public init(labels: [String]) {
        self.labels = labels
    }

    /// Parses dotted text (`a.b.c.` or `a.b.c`).
    public init(_ text: String) {
        self.labels = text.split(separator: ".", omittingEmptySubsequences: true).map(String.init)
    }

    /// The name's labels in lower case, for comparison.
    public var lowercased: [String] { self.labels.map { $0.lowercased() } }

    /// Whether this name is `suffix` or below it; answers the labels before it.
    public func labels(below suffix: DNSName) -> [String]? {
        let mine = self.lowercased, theirs = suffix.lowercased
        guard mine.count >= theirs.count, Array(mine.suffix(theirs.count)) == theirs else { return nil }
        return Array(self.labels.prefix(mine.count - theirs.count))
    }

    /// The name with `labels` in front.
    public func prefixed(with labels: [String]) -> DNSName { DNSName(labels: labels + self.labels) }

    /// Its length on the wire, uncompressed: a length byte per label plus the root's.
    public var wireLength: Int { self.labels.reduce(1) { $0 + 1 + $1.utf8.count } }

    public var description: String { self.labels.joined(separator: ".") + "." }

    /// Equal when the labels are, ignoring ASCII case.
    public static func == (lhs: DNSName, rhs: DNSName) -> Bool { lhs.lowercased == rhs.lowercased }
    /// Hashes the lower-cased labels, as equality compares them.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.lowercased) }
}
