import Foundation

/// Checks `Authorization: Bearer TOKEN` headers in constant time.
public enum BearerToken {
    /// Whether `header` is `Bearer <token>`; compares every byte whatever the first difference,
    /// so timing does not reveal how much of a guess was right.
    public static func matches(_ header: String?, token: String) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        return Self.equal(Array(header.utf8.dropFirst("Bearer ".count)), Array(token.utf8))
    }

    /// Whether `header` is `Basic base64(user:token)` (any user): browsers can send that
    /// after their own login prompt, so the dashboard works with a token set.
    public static func matchesBasic(_ header: String?, token: String) -> Bool {
        guard let header, header.hasPrefix("Basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst("Basic ".count))).map(Array.init),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { return false }
        return Self.equal(Array(decoded[decoded.index(after: colon)...]), Array(token.utf8))
    }

    /// Constant time for the token's length. The lengths are compared whole: folding their
    /// difference into a byte (as this once did) let the token followed by any 256 bytes pass.
    static func equal(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for index in 0..<expected.count {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}

