/// One source a drill drives: it hands inputs to the cluster at the drill's pace and enters
/// each in its ledger, then watches for their outcomes.
protocol DrillLoad: Sendable {
    /// `http`, `files`, `csv` or `stomp`.
    var source: String { get }
    /// Every input sent and what became of it.
    var ledger: DrillLedger { get }
    /// Whether the source's delivery is at-least-once, so an input may be answered twice.
    var duplicatesAllowed: Bool { get }

    /// Sends inputs at `pace` until its end, then watches for the outcomes still missing until
    /// each has one or `settle` more has passed.
    func run(_ pace: Pace, settle: Duration) async
}

/// When each input of a load is due: `rate` a second from the start, until `end`.
struct Pace: Sendable {
    /// When the load started (the drill's zero).
    let start: ContinuousClock.Instant
    /// When it stops.
    let end: ContinuousClock.Instant
    /// Inputs a second.
    let rate: Double

    /// When input `index` (from 0) is due.
    func due(_ index: Int) -> ContinuousClock.Instant { self.start + .seconds(Double(index) / self.rate) }

    /// Seconds from the start to now.
    func now() -> Double { Self.seconds(ContinuousClock.now - self.start) }

    /// Waits until input `index` is due; `false` when that is past the end.
    func wait(for index: Int) async -> Bool {
        let due = self.due(index)
        guard due < self.end else { return false }
        if due > .now { try? await Task.sleep(until: due) }
        return ContinuousClock.now < self.end
    }

    /// A duration in seconds.
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
