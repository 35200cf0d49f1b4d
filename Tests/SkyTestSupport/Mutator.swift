import Foundation
import SkyLib

/// Bounded, reproducible fuzzing for CI: mutations of valid inputs (flipped, inserted, deleted,
/// duplicated and truncated bytes) from a seeded generator, so a failure names its seed and
/// case and can be replayed. `SKYNET_FUZZ_CASES` runs more cases on demand.
public struct Mutator {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed &+ 0x9E37_79B9_7F4A_7C15
    }

    /// How many cases a fuzz test runs: `default`, or `SKYNET_FUZZ_CASES`.
    public static func cases(default count: Int) -> Int {
        guard let value = ProcessInfo.processInfo.environment["SKYNET_FUZZ_CASES"].flatMap(Int.init), value > 0 else { return count }
        return value
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        return FastRandom.mix(self.state)
    }

    public mutating func below(_ bound: Int) -> Int {
        Int(self.next() % UInt64(max(bound, 1)))
    }

    /// `input` with one to four random mutations; bytes that matter to the formats (quotes,
    /// colons, newlines, braces, NUL) are favoured.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        let interesting: [UInt8] = Array("\"':\n\r\0{}[],-#&*!|>\\ \t".utf8) + [0xFF, 0xC3]
        var bytes = input
        for _ in 0...self.below(4) {
            let position = self.below(bytes.count + 1)
            let byte = self.below(3) == 0 ? UInt8(truncatingIfNeeded: self.next()) : interesting[self.below(interesting.count)]
            switch self.below(5) {
            case 0 where position < bytes.count: bytes[position] = byte
            case 1: bytes.insert(byte, at: position)
            case 2 where position < bytes.count: bytes.remove(at: position)
            case 3 where !bytes.isEmpty:
                let start = self.below(bytes.count)
                let end = min(bytes.count, start + self.below(16))
                bytes.insert(contentsOf: bytes[start..<end], at: position)
            default: bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }
}
