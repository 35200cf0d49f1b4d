import Synchronization

/// Every input a drill sent, by id, and what became of it.
///
/// An input is entered only once the cluster has it (an HTTP request written, a file renamed
/// into the folder, a STOMP message the broker confirmed with a receipt): one that could not be
/// handed over (the router or broker down) is tried again later under the same id, and never
/// counts as lost. The first outcome seen is the input's; every later one counts as a duplicate.
public final class DrillLedger: Sendable {
    /// What became of an input.
    public enum Outcome: Sendable, Hashable {
        /// The route answered it.
        case answered
        /// The route answered with an error (an HTTP error status): accounted for, not lost.
        case failed(code: String)
        /// Kept with its error for a redrive: a file in `.failed/`, a dead-lettered message.
        case parked(code: String)
        /// Sent, but the sender saw no answer (the connection broke after the request went).
        case unanswered(reason: String)
    }

    /// One input's record.
    public struct Entry: Sendable {
        /// The input's id (in its body, file name or header).
        public var id: String
        /// Seconds from the start of the load to its hand-over.
        public var sentAt: Double
        /// Its first outcome, when one has been seen.
        public var outcome: Outcome?
        /// Seconds from the start of the load to that outcome.
        public var doneAt: Double?
        /// Outcomes seen after the first.
        public var duplicates = 0
    }

    /// The entries by id, and their ids in the order sent.
    private struct State {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var unknownOutcomes = 0
    }

    private let state = Mutex(State())

    /// Creates an empty `DrillLedger`.
    public init() {}

    /// Enters `id` as handed over at `at` (seconds from the start of the load).
    public func sent(_ id: String, at: Double) {
        self.state.withLock { state in
            guard state.entries[id] == nil else { return }
            state.entries[id] = Entry(id: id, sentAt: at)
            state.order.append(id)
        }
    }

    /// Records an outcome for `id`; a second one is a duplicate, one for an id never sent is
    /// counted apart (an input of an earlier run, or someone else's).
    public func record(_ outcome: Outcome, for id: String, at: Double) {
        self.state.withLock { state in
            guard var entry = state.entries[id] else {
                state.unknownOutcomes += 1
                return
            }
            if entry.outcome == nil {
                entry.outcome = outcome
                entry.doneAt = at
            } else {
                entry.duplicates += 1
            }
            state.entries[id] = entry
        }
    }

    /// Whether `id` has an outcome.
    public func isSettled(_ id: String) -> Bool { self.state.withLock { $0.entries[id]?.outcome != nil } }

    /// The ids sent and not yet settled.
    public var pending: [String] { self.state.withLock { state in state.order.filter { state.entries[$0]?.outcome == nil } } }

    /// Every entry, in the order sent.
    public var entries: [Entry] { self.state.withLock { state in state.order.compactMap { state.entries[$0] } } }

    /// Outcomes seen for ids this drill never sent.
    public var unknownOutcomes: Int { self.state.withLock { $0.unknownOutcomes } }
}
