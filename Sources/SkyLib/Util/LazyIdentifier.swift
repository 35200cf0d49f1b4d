/// An id kept as the bits it was made from and spelled as text only when someone reads it.
///
/// Every request gets a request id, a trace id and span ids, but most are never read: a CSV
/// row or a dropped file that succeeds, unsampled, logs nothing and answers without them.
/// Spelling each in hex was three string allocations per row and showed in the CSV
/// initiator's profile (BENCHMARKS.md), so the bits are kept and the text made on demand.
/// An id that came in as text (a caller's `traceparent`, an envelope off the wire) keeps
/// that text unchanged.
///
/// Two ids are equal when their text is: a minted id and the same id parsed back from its
/// text compare equal.
public struct LazyIdentifier: Sendable, Hashable, CustomStringConvertible {
    private enum Storage: Sendable {
        /// 64 bits, spelled as 16 hex digits (span ids).
        case hex64(UInt64)
        /// 128 bits, spelled as 32 hex digits, or as a dashed UUID.
        case hex128(high: UInt64, low: UInt64, dashed: Bool)
        /// Text as it came.
        case text(String)
    }

    private let storage: Storage

    /// An id that is this text, as given.
    public init(_ text: String) {
        self.storage = .text(text)
    }

    /// A fresh 64-bit span id (never zero, as W3C trace context requires).
    public static func span() -> LazyIdentifier {
        LazyIdentifier(storage: .hex64(Identifiers.nonZero()))
    }

    /// A fresh time-ordered 128-bit trace id (hex, no dashes).
    public static func trace() -> LazyIdentifier {
        let (high, low) = Identifiers.version7()
        return LazyIdentifier(storage: .hex128(high: high, low: low, dashed: false))
    }

    /// A fresh time-ordered request id (a version-7 UUID).
    public static func request() -> LazyIdentifier {
        let (high, low) = Identifiers.version7()
        return LazyIdentifier(storage: .hex128(high: high, low: low, dashed: true))
    }

    private init(storage: Storage) {
        self.storage = storage
    }

    /// The id as text: made now for a minted id (each read spells it again; read it once and
    /// keep it where that matters).
    public var text: String {
        switch self.storage {
        case .hex64(let bits): Identifiers.hex(bits)
        case .hex128(let high, let low, let dashed): Identifiers.hex(high, low, dashed: dashed)
        case .text(let text): text
        }
    }

    /// The text, as ``text``.
    public var description: String { self.text }

    /// Equal when the text is: minted bits are compared as bits, anything else as text.
    public static func == (lhs: LazyIdentifier, rhs: LazyIdentifier) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.hex64(let left), .hex64(let right)): left == right
        case (.hex128(let leftHigh, let leftLow, let leftDashed), .hex128(let rightHigh, let rightLow, let rightDashed)):
            leftHigh == rightHigh && leftLow == rightLow && leftDashed == rightDashed
        default: lhs.text == rhs.text
        }
    }

    /// Hashes the text, so that equal ids hash alike whatever their form.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.text)
    }
}
