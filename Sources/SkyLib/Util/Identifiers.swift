public import Foundation
import Synchronization

/// Fresh ids for requests, nodes and trace spans.
///
/// Request, node and trace ids are time-ordered: UUIDv7 (RFC 9562) — 48 bits of Unix
/// milliseconds, then a 12-bit sequence within the millisecond, then 62 random bits. They
/// sort by creation time across processes (to the millisecond, as far as clocks agree) and
/// strictly in creation order within a process, as text and as numbers. UUIDv7 rather than a
/// Snowflake id because it needs no machine id handed out to each process (62 random bits
/// keep processes apart) and keeps the 128-bit UUID form every field and tool here already
/// takes. A trace id is the same 128 bits in plain hex, which W3C trace context accepts.
public enum Identifiers {
    /// A new request id (a version-7 UUID, lower case).
    public static func requestID() -> String { LazyIdentifier.request().text }
    /// A new node id (a version-7 UUID, lower case).
    public static func nodeID() -> String { LazyIdentifier.request().text }
    /// A new 128-bit trace id in hex, as W3C trace context spells it (time-ordered too).
    public static func traceID() -> String { LazyIdentifier.trace().text }

    /// The short form people see (`sky nodes`, the dashboard, traces) and may type: the id's
    /// last 8 characters. Not its first 8: in a time-ordered id those are the clock, shared by
    /// every id made within a minute or so; the last ones are random.
    public static func short(_ id: String) -> String { String(id.suffix(8)) }

    /// Whether `text`, as someone typed it, names `id`: the whole id, a prefix of it, or its
    /// short form (a suffix).
    public static func matches(_ id: String, typed text: String) -> Bool {
        !text.isEmpty && (id.hasPrefix(text) || id.hasSuffix(text))
    }

    /// The creation time of a time-ordered id (a request, node or trace id made here), or
    /// `nil` when `id` is not one.
    public static func createdAt(_ id: String) -> Date? {
        let digits = id.utf8.filter { $0 != UInt8(ascii: "-") }
        guard digits.count == 32, let high = UInt64(String(decoding: digits.prefix(16), as: UTF8.self), radix: 16), (high >> 12) & 0xF == 7 else { return nil }
        return Date(timeIntervalSince1970: Double(high >> 16) / 1000)
    }

    /// Milliseconds since 1970 (48 bits) and the sequence within them (12 bits) of the last id,
    /// packed as `ms << 12 | sequence`. The next id takes the larger of the clock now and the
    /// last id plus one, so ids strictly increase within the process: a sequence that runs
    /// over 4096 in one millisecond borrows the next (RFC 9562, 6.2 method 1), and a clock that
    /// steps back does not reorder them.
    private static let last = Atomic<UInt64>(0)

    /// The two halves of a new UUIDv7.
    static func version7() -> (high: UInt64, low: UInt64) {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000)) << 12
        var current = Self.last.load(ordering: .relaxed)
        while true {
            let next = max(now, current &+ 1)
            let (exchanged, original) = Self.last.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged {
                let milliseconds = next >> 12, sequence = next & 0xFFF
                let high = (milliseconds << 16) | 0x7000 | sequence
                let low = (FastRandom.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000   // RFC 9562 variant
                return (high, low)
            }
            current = original
        }
    }
    /// A new 64-bit span id in hex.
    public static func spanID() -> String { LazyIdentifier.span().text }

    static func nonZero() -> UInt64 {
        while true {
            let value = FastRandom.next()
            if value != 0 { return value }
        }
    }

    /// Fixed-width lower-case hex of `high` (and `low`: 16 digits each), dashed as a UUID
    /// (after digits 8, 12, 16 and 20) when asked. Written straight into the string's storage
    /// with no array in between: ids showed in the CSV initiator's profile (one id per row).
    static func hex(_ high: UInt64, _ low: UInt64? = nil, dashed: Bool = false) -> String {
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
