import Foundation
import Synchronization

/// Fresh ids for requests, nodes and trace spans.
public enum Identifiers {
    /// A new request id (a version-4 UUID, lower case).
    public static func requestID() -> String { Self.uuid() }
    /// A new node id (a version-4 UUID, lower case).
    public static func nodeID() -> String { Self.uuid() }
    /// A new 128-bit trace id in hex, as W3C trace context spells it.
    public static func traceID() -> String {
        Self.hex(Self.nonZero(), FastRandom.next())
    }
    /// A new 64-bit span id in hex.
    public static func spanID() -> String { Self.hex(Self.nonZero()) }

    private static func nonZero() -> UInt64 {
        while true {
            let value = FastRandom.next()
            if value != 0 { return value }
        }
    }

    private static func uuid() -> String {
        var high = FastRandom.next()
        var low = FastRandom.next()
        high = (high & ~0xF000) | 0x4000                      // version 4
        low = (low & ~(0xC000 << 48)) | (0x8000 << 48)         // RFC 4122 variant
        return Self.hex(high, low, dashed: true)
    }

    /// Fixed-width lower-case hex of `high` (and `low`: 16 digits each), dashed as a UUID
    /// (after digits 8, 12, 16 and 20) when asked. Written straight into the string's storage
    /// with no array in between: ids showed in the CSV initiator's profile (one id per row).
    private static func hex(_ high: UInt64, _ low: UInt64? = nil, dashed: Bool = false) -> String {
        let digitCount = low == nil ? 16 : 32
        return String(unsafeUninitializedCapacity: digitCount + (dashed ? 4 : 0)) { buffer in
            var index = 0
            for position in 0..<digitCount {
                let word = position < 16 ? high : (low ?? 0)
                let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (position & 15))) & 0xF
                buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
                index += 1
                if dashed, position == 7 || position == 11 || position == 15 || position == 19 {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
            }
            return index
        }
    }
}

/// Fast, lock-free, non-cryptographic random numbers for ids.
///
/// `UInt64.random` and `UUID()` ask the kernel (`getrandom`) on every call; with a request id
/// and several span ids per request that showed in the router's profile. Ids need to be
/// unique and well spread, not secret: SplitMix64 over an atomic counter seeded once from the
/// system generator gives that without a system call.
public enum FastRandom {
    private static let state = Atomic<UInt64>(UInt64.random(in: 0...UInt64.max))

    /// The next 64 random bits.
    public static func next() -> UInt64 {
        Self.mix(Self.state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue)
    }

    /// SplitMix64's output function: spreads the bits of a counter value (the test fuzzer's
    /// seeded generator uses it too).
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Wall-clock helpers; deadlines on the wire are epoch milliseconds. Not named `Clock`, which
/// would shadow `Swift.Clock` in every module that imports SkyLib.
public enum WallClock {
    /// Milliseconds since 1970 (UTC), now.
    public static func epochMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
