/// Selects service versions for a step's `version:`: `1.2.0` (exact), `1.*` or `1.2.*`
/// (that prefix), `*` (any).
public struct VersionSelector: Sendable, Hashable {
    private let parts: [Substring]
    private let wildcard: Bool

    /// `nil` when the text is not a selector (a `*` anywhere but at the end, empty parts).
    public init?(_ text: String) {
        var parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.wildcard = parts.last == "*"
        if self.wildcard { parts.removeLast() }
        guard parts.allSatisfy({ !$0.contains("*") }) else { return nil }
        self.parts = parts
    }

    /// Whether `version` is selected.
    public func matches(_ version: String) -> Bool {
        let candidate = version.split(separator: ".", omittingEmptySubsequences: false)
        if self.wildcard {
            return candidate.count >= self.parts.count && Array(candidate.prefix(self.parts.count)) == self.parts
        }
        return candidate == self.parts
    }
}
