/// Checks `Authorization: Bearer TOKEN` headers in constant time.
public enum BearerToken {
    /// Whether `header` is `Bearer <token>`; compares every byte whatever the first difference,
    /// so timing does not reveal how much of a guess was right.
    public static func matches(_ header: String?, token: String) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.utf8.dropFirst("Bearer ".count))
        let expected = Array(token.utf8)
        var difference = UInt8(truncatingIfNeeded: given.count ^ expected.count)
        for index in 0..<expected.count {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}
