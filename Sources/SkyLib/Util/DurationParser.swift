import Foundation

/// Parses the durations route files and flags use: `250ms`, `2s`, `1.5s`, `1m`, `1h`, `500us`.
public enum DurationParser {
    /// The duration, or `nil` when the text is not one (bare numbers are refused: the unit matters).
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, seconds) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
                let value = Double(number), value.isFinite, value >= 0
            else { return nil }
            let nanoseconds = value * seconds * 1e9
            guard nanoseconds < 1e18 else { return nil }
            return .nanoseconds(Int64(nanoseconds.rounded()))
        }
        return nil
    }

    /// A short human spelling: `250ms`, `2s`, `1.5s`.
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        if milliseconds < 1000 || milliseconds % 1000 != 0 && milliseconds < 10_000 && milliseconds % 100 != 0 {
            return "\(milliseconds)ms"
        }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(Double(milliseconds) / 1000)s"
    }
}
