import Foundation
public import SkyLib

/// What one fault did, as the drill applied it.
public struct FaultEvent: Sendable, Hashable {
    /// The fault as written.
    public var fault: String
    /// Which time this fault came (1 for the first).
    public var occurrence: Int
    /// Seconds from the start of the load to when the drill applied it.
    public var start: Double
    /// Seconds from the start of the load to when it was over (the process started again, the
    /// suspension lifted); for a kill without restart, one second after the kill.
    public var end: Double
    /// What was done, to which process (`SIGKILL pid 4242 (uppercase at 127.0.0.1:9001)`), or why
    /// nothing was.
    public var detail: String
    /// Whether it was applied (false: skipped, with the reason in ``detail``).
    public var applied: Bool

    /// Creates a `FaultEvent` from its parts.
    public init(fault: String, occurrence: Int, start: Double, end: Double, detail: String, applied: Bool) {
        self.fault = fault
        self.occurrence = occurrence
        self.start = start
        self.end = end
        self.detail = detail
        self.applied = applied
    }

    /// Its JSON form in the report.
    var json: JSONValue {
        ["fault": .string(self.fault), "occurrence": .int(Int64(self.occurrence)), "start": .double(self.start), "end": .double(self.end),
         "detail": .string(self.detail), "applied": .bool(self.applied)]
    }
}

/// A drill's result: every input accounted for, latency before, during and after each fault,
/// and the verdict.
public struct DrillReport: Sendable {
    /// The inputs of one source, counted by outcome.
    public struct Tally: Sendable, Hashable {
        /// `http`, `files`, `csv` or `stomp`.
        public var source: String
        /// Inputs handed over.
        public var sent = 0
        /// Answered by the route.
        public var answered = 0
        /// Answered with an error, by code.
        public var failed: [String: Int] = [:]
        /// Parked or dead-lettered, by error code.
        public var parked: [String: Int] = [:]
        /// Sent and never accounted for: no answer, no error, not parked. With the reason where
        /// the sender saw one (`no answer: connection reset`).
        public var missing: [String: Int] = [:]
        /// Outcomes beyond the first for one input.
        public var duplicated = 0
        /// Whether the source's guarantee allows duplicates (at-least-once delivery).
        public var duplicatesAllowed = false

        /// Inputs missing, whatever the reason.
        public var missingCount: Int { self.missing.values.reduce(0, +) }
        /// Inputs failed, whatever the code.
        public var failedCount: Int { self.failed.values.reduce(0, +) }
        /// Inputs parked, whatever the code.
        public var parkedCount: Int { self.parked.values.reduce(0, +) }
    }

    /// Latency and outcomes of the inputs sent within one phase.
    public struct Phase: Sendable, Hashable {
        /// `before kill:uppercase@2s/1s`, `during … #1`, `after … #1`.
        public var name: String
        /// Seconds from the start of the load.
        public var from: Double
        /// Seconds from the start of the load.
        public var to: Double
        /// Inputs sent in the phase.
        public var sent: Int
        /// Of those, accounted for (answered, failed or parked).
        public var settled: Int
        /// Of those, missing.
        public var missing: Int
        /// Median time to the outcome, milliseconds (nil without outcomes).
        public var p50: Double?
        /// 99th percentile, milliseconds.
        public var p99: Double?
        /// Slowest, milliseconds.
        public var max: Double?
    }

    /// A process of the cluster sampled once a second during the drill.
    public struct ProcessSeries: Sendable, Hashable {
        /// `router at 127.0.0.1:8080`.
        public var name: String
        /// Its process id.
        public var pid: Int32
        /// Resident memory, KiB, one sample a second.
        public var rss: [Int]
        /// Open descriptors, one sample a second.
        public var descriptors: [Int]

        /// Creates a `ProcessSeries` from its parts.
        public init(name: String, pid: Int32, rss: [Int], descriptors: [Int]) {
            self.name = name
            self.pid = pid
            self.rss = rss
            self.descriptors = descriptors
        }

        /// The most memory over the second half of the samples, KiB: after warm-up, the figure
        /// a flat-memory claim is about.
        public var secondHalfRange: ClosedRange<Int>? {
            let half = self.rss.suffix(max(1, self.rss.count / 2))
            guard let low = half.min(), let high = half.max() else { return nil }
            return low...high
        }
    }

    /// The route driven.
    public var route: String
    /// The drill's id (in every input's id).
    public var id: String
    /// The faults as given.
    public var faults: [String]
    /// How long the load ran, seconds.
    public var duration: Double
    /// How long the drill waited after the load for the last outcomes, seconds.
    public var settle: Double
    /// One tally per source driven.
    public var tallies: [Tally]
    /// Each fault as applied.
    public var events: [FaultEvent]
    /// Latency per phase, in time order.
    public var phases: [Phase]
    /// Outcomes for ids this drill never sent.
    public var unknownOutcomes: Int
    /// The cluster's router and initiator processes on this machine, sampled.
    public var processes: [ProcessSeries] = []

    /// Why the drill failed; empty when every input is accounted for.
    public var problems: [String] {
        var problems: [String] = []
        for tally in self.tallies {
            if tally.missingCount > 0 { problems.append("\(tally.missingCount) of \(tally.sent) \(tally.source) inputs missing") }
            if tally.duplicated > 0 && !tally.duplicatesAllowed {
                problems.append("\(tally.duplicated) duplicated \(tally.source) outcomes, which \(tally.source) does not allow")
            }
        }
        return problems
    }

    /// Whether every input was answered, failed with its error or parked, once (or more than
    /// once where the source's delivery is at-least-once).
    public var passed: Bool { self.problems.isEmpty }

    /// Counts `ledgers` (one per source) and cuts the load into phases at the faults.
    public static func make(
        route: String, id: String, faults: [String], duration: Double, settle: Double,
        ledgers: [(source: String, ledger: DrillLedger, duplicatesAllowed: Bool)], events: [FaultEvent]
    ) -> DrillReport {
        var tallies: [Tally] = []
        var all: [DrillLedger.Entry] = []
        var unknown = 0
        for (source, ledger, allowed) in ledgers {
            var tally = Tally(source: source, duplicatesAllowed: allowed)
            for entry in ledger.entries {
                tally.sent += 1
                tally.duplicated += entry.duplicates
                switch entry.outcome {
                case .answered: tally.answered += 1
                case .failed(let code): tally.failed[code, default: 0] += 1
                case .parked(let code): tally.parked[code, default: 0] += 1
                case .unanswered(let reason): tally.missing["no answer: \(reason)", default: 0] += 1
                case nil: tally.missing["no outcome", default: 0] += 1
                }
            }
            all += ledger.entries
            unknown += ledger.unknownOutcomes
            tallies.append(tally)
        }
        return DrillReport(
            route: route, id: id, faults: faults, duration: duration, settle: settle, tallies: tallies, events: events,
            phases: Self.phases(of: all, events: events.filter(\.applied), duration: duration), unknownOutcomes: unknown
        )
    }

    /// Before the first fault, during each, and after each until the next begins.
    static func phases(of entries: [DrillLedger.Entry], events: [FaultEvent], duration: Double) -> [Phase] {
        var cuts: [(String, Double, Double)] = []
        var cursor = 0.0
        var previous = "before any fault"
        for event in events.sorted(by: { $0.start < $1.start }) {
            let label = "\(event.fault) #\(event.occurrence)"
            if event.start > cursor { cuts.append((previous, cursor, event.start)) }
            cuts.append(("during \(label)", max(cursor, event.start), max(event.end, event.start)))
            cursor = max(cursor, event.end)
            previous = "after \(label)"
        }
        if duration > cursor || cuts.isEmpty { cuts.append((previous, cursor, max(duration, cursor))) }
        return cuts.map { name, from, to in
            let inside = entries.filter { $0.sentAt >= from && $0.sentAt < to }
            var latencies: [Double] = []
            var missing = 0
            for entry in inside {
                switch entry.outcome {
                case nil, .unanswered: missing += 1
                default: if let done = entry.doneAt { latencies.append((done - entry.sentAt) * 1000) }
                }
            }
            latencies.sort()
            func quantile(_ q: Double) -> Double? {
                latencies.isEmpty ? nil : latencies[min(latencies.count - 1, Int((Double(latencies.count) * q).rounded(.down)))]
            }
            return Phase(name: name, from: from, to: to, sent: inside.count, settled: inside.count - missing, missing: missing,
                         p50: quantile(0.5), p99: quantile(0.99), max: latencies.last)
        }
    }

    /// The report as JSON (`sky drill --json`, and what the dashboard's drills page shows).
    public var json: JSONValue {
        func counts(_ map: [String: Int]) -> JSONValue { .object(map.mapValues { .int(Int64($0)) }) }
        func number(_ value: Double?) -> JSONValue { value.map { .double(($0 * 100).rounded() / 100) } ?? .null }
        return [
            "route": .string(self.route), "id": .string(self.id), "faults": .array(self.faults.map { .string($0) }),
            "duration": .double(self.duration), "settle": .double(self.settle), "passed": .bool(self.passed),
            "problems": .array(self.problems.map { .string($0) }), "unknownOutcomes": .int(Int64(self.unknownOutcomes)),
            "sources": .array(self.tallies.map { tally in
                ["source": .string(tally.source), "sent": .int(Int64(tally.sent)), "answered": .int(Int64(tally.answered)),
                 "failed": counts(tally.failed), "parked": counts(tally.parked), "missing": counts(tally.missing),
                 "missingCount": .int(Int64(tally.missingCount)), "duplicated": .int(Int64(tally.duplicated)),
                 "duplicatesAllowed": .bool(tally.duplicatesAllowed)]
            }),
            "events": .array(self.events.map(\.json)),
            "processes": .array(self.processes.map { process in
                ["name": .string(process.name), "pid": .int(Int64(process.pid)), "rssKiB": .array(process.rss.map { .int(Int64($0)) }),
                 "descriptors": .array(process.descriptors.map { .int(Int64($0)) })]
            }),
            "phases": .array(self.phases.map { phase in
                ["name": .string(phase.name), "from": number(phase.from), "to": number(phase.to), "sent": .int(Int64(phase.sent)),
                 "settled": .int(Int64(phase.settled)), "missing": .int(Int64(phase.missing)),
                 "p50Ms": number(phase.p50), "p99Ms": number(phase.p99), "maxMs": number(phase.max)]
            }),
        ]
    }

    /// The report for a person: the ledger per source, the faults as applied, latency per phase,
    /// and the verdict.
    public var text: String {
        func listed(_ map: [String: Int]) -> String {
            map.isEmpty ? "0" : map.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        }
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
        var lines = ["drill \(self.id) on route \(self.route): \(String(format: "%.0f", self.duration)) s of load, faults: \(self.faults.isEmpty ? "none" : self.faults.joined(separator: ", "))", ""]
        lines.append(Table.render(
            header: ["SOURCE", "SENT", "ANSWERED", "FAILED", "PARKED", "MISSING", "DUPLICATED"],
            rows: self.tallies.map { tally in
                [tally.source, "\(tally.sent)", "\(tally.answered)", listed(tally.failed), listed(tally.parked), listed(tally.missing),
                 "\(tally.duplicated)" + (tally.duplicatesAllowed && tally.duplicated > 0 ? " (allowed: at-least-once)" : "")]
            }
        ))
        lines.append("")
        if self.events.isEmpty {
            lines.append("no fault applied")
        } else {
            lines.append(Table.render(
                header: ["FAULT", "AT", "UNTIL", "WHAT WAS DONE"],
                rows: self.events.map { ["\($0.fault) #\($0.occurrence)", String(format: "%.1fs", $0.start), String(format: "%.1fs", $0.end), ($0.applied ? "" : "skipped: ") + $0.detail] }
            ))
        }
        lines.append("")
        lines.append(Table.render(
            header: ["PHASE", "FROM", "TO", "SENT", "SETTLED", "MISSING", "P50 MS", "P99 MS", "MAX MS"],
            rows: self.phases.map { phase in
                [phase.name, String(format: "%.1fs", phase.from), String(format: "%.1fs", phase.to), "\(phase.sent)", "\(phase.settled)", "\(phase.missing)",
                 ms(phase.p50), ms(phase.p99), ms(phase.max)]
            }
        ))
        if !self.processes.isEmpty {
            lines.append("")
            func mib(_ kib: Int?) -> String { kib.map { String(format: "%.0f", Double($0) / 1024) } ?? "-" }
            lines.append(Table.render(
                header: ["PROCESS", "PID", "SAMPLES", "RSS FIRST → LAST MIB", "RSS 2ND HALF MIB", "FDS FIRST → LAST"],
                rows: self.processes.map { process in
                    [process.name, "\(process.pid)", "\(process.rss.count)", "\(mib(process.rss.first)) → \(mib(process.rss.last))",
                     process.secondHalfRange.map { "\(mib($0.lowerBound))–\(mib($0.upperBound))" } ?? "-",
                     "\(process.descriptors.first.map(String.init) ?? "-") → \(process.descriptors.last.map(String.init) ?? "-")"]
                }
            ))
        }
        lines.append("")
        if self.unknownOutcomes > 0 { lines.append("\(self.unknownOutcomes) outcomes for inputs this drill did not send (ignored)") }
        lines.append(self.passed ? "PASSED: every input is accounted for" : "FAILED: " + self.problems.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}
