/// A lock-free latency histogram with fixed, log-spaced buckets (each 25% wider than the
/// last, 50 µs to about 80 s), readable as counts so that another process (the dashboard) can
/// subtract two snapshots and get the percentiles of just that interval.
///
/// Prometheus histograms (at `/metrics`) have a handful of buckets chosen for alerting; these
/// are fine enough for a p50 and p99 within about 12%.
public final class LatencyHistogram: Sendable {
    /// Upper bounds of the buckets, in microseconds; the last bucket takes everything above.
    public static let bounds: [Double] = {
        var bounds: [Double] = []
        var bound = 50.0
        while bound < 80_000_000 {
            bounds.append(bound.rounded())
            bound *= 1.25
        }
        return bounds
    }()

    private let counts: [CounterCell]

    /// Creates a `LatencyHistogram` with the defaults.
    public init() {
        self.counts = (0...Self.bounds.count).map { _ in CounterCell() }
    }

    /// Counts one observation.
    public func record(_ duration: Duration) {
        self.record(duration, count: 1)
    }

    /// Counts `count` observations of the same duration (a batch's rows, each at the batch's
    /// mean) with one atomic add.
    public func record(_ duration: Duration, count: Int64) {
        let micros = duration.seconds * 1_000_000
        // Binary search for the first bound at or above the value.
        var low = 0
        var high = Self.bounds.count
        while low < high {
            let middle = (low + high) / 2
            if Self.bounds[middle] < micros { low = middle + 1 } else { high = middle }
        }
        self.counts[low].add(count)
    }

    /// The count in every bucket (one more than ``bounds``: the last is the overflow).
    public func snapshot() -> [Int64] {
        self.counts.map(\.value)
    }

    /// The `quantile` (0…1) of a snapshot or of a difference of two, in microseconds: the
    /// upper bound of the bucket it falls in. `nil` when there are no observations.
    public static func quantile(_ quantile: Double, of counts: [Int64]) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, Int64((quantile * Double(total)).rounded(.up)))
        var seen: Int64 = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return index < Self.bounds.count ? Self.bounds[index] : (Self.bounds.last ?? 0) * 1.25 }
        }
        return Self.bounds.last
    }

    /// Sparse JSON of a snapshot: `[[bucket, count], …]` for the non-empty buckets.
    public static func sparse(_ counts: [Int64]) -> JSONValue {
        .array(counts.enumerated().compactMap { index, count in count == 0 ? nil : .array([.int(Int64(index)), .int(count)]) })
    }

    /// Reads ``sparse(_:)`` back into a dense snapshot.
    public static func dense(_ json: JSONValue?) -> [Int64] {
        var counts = [Int64](repeating: 0, count: Self.bounds.count + 1)
        for pair in json?.arrayValue ?? [] {
            guard let items = pair.arrayValue, items.count == 2, let index = items[0].intValue, let count = items[1].intValue,
                  index >= 0, Int(index) < counts.count
            else { continue }
            counts[Int(index)] = count
        }
        return counts
    }
}
