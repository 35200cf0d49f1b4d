/// One label of a host name (RFC 1123): letters, digits and hyphens, 1 to 63 characters, not
/// starting or ending with a hyphen. An environment name must be one, because it becomes a
/// label of DNS names (`sky dns`); other values are made into labels with ``sanitized(_:)``.
public enum DNSLabel {
    /// Whether `text` is a valid label.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { Self.allowed($0) }
    }

    /// `text` made into a label: lower case, anything else than letters, digits and hyphens
    /// (dots too) as hyphens, cut to 63 characters.
    public static func sanitized(_ text: String) -> String {
        let bytes = text.lowercased().utf8.map { Self.allowed($0) ? $0 : UInt8(ascii: "-") }
        var label = String(decoding: bytes.prefix(63), as: UTF8.self)
        while label.hasSuffix("-") { label.removeLast() }
        while label.hasPrefix("-") { label.removeFirst() }
        return label.isEmpty ? "x" : label
    }

    private static func allowed(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
    }
}
