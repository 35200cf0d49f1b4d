import Foundation

/// Fresh ids for requests, nodes and trace spans.
public enum Identifiers {
    /// A new request id (UUID, lower case).
    public static func requestID() -> String { UUID().uuidString.lowercased() }
    /// A new node id (UUID, lower case).
    public static func nodeID() -> String { UUID().uuidString.lowercased() }
    /// A new 128-bit trace id in hex, as W3C trace context spells it.
    public static func traceID() -> String {
        Self.hex(UInt64.random(in: 1...UInt64.max)) + Self.hex(UInt64.random(in: 0...UInt64.max))
    }
    /// A new 64-bit span id in hex.
    public static func spanID() -> String { Self.hex(UInt64.random(in: 1...UInt64.max)) }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// Wall-clock helpers; deadlines on the wire are epoch milliseconds.
public enum Clock {
    /// Milliseconds since 1970 (UTC), now.
    public static func epochMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
