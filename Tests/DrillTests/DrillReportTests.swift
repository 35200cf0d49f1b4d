import Drill
import SkyLib
import Testing

@Suite struct DrillReportTests {
    /// Ten inputs: answered, failed, parked, one unanswered and one with no outcome; a duplicate.
    private func ledger() -> DrillLedger {
        let ledger = DrillLedger()
        for index in 0..<10 { ledger.sent("i\(index)", at: Double(index)) }
        for index in 0..<6 { ledger.record(.answered, for: "i\(index)", at: Double(index) + 0.01 * Double(index + 1)) }
        ledger.record(.failed(code: "step_failed"), for: "i6", at: 6.5)
        ledger.record(.parked(code: "deadline_exceeded"), for: "i7", at: 7.5)
        ledger.record(.unanswered(reason: "timeout"), for: "i8", at: 9)
        ledger.record(.answered, for: "i0", at: 9)
        ledger.record(.answered, for: "someone-else", at: 9)
        return ledger
    }

    @Test func everyInputIsCountedOnceByOutcomeAndMissingOnesFailTheDrill() {
        let report = DrillReport.make(route: "text", id: "d", faults: [], duration: 10, settle: 1, ledgers: [("http", self.ledger(), false)], events: [])
        let tally = report.tallies[0]
        #expect(tally.sent == 10)
        #expect(tally.answered == 6)
        #expect(tally.failed == ["step_failed": 1])
        #expect(tally.parked == ["deadline_exceeded": 1])
        #expect(tally.missing == ["no answer: timeout": 1, "no outcome": 1])
        #expect(tally.duplicated == 1)
        #expect(report.unknownOutcomes == 1)
        #expect(!report.passed)
        #expect(report.problems == ["2 of 10 http inputs missing", "1 duplicated http outcomes, which http does not allow"])
        #expect(report.json["sources"]?.arrayValue?.first?["missingCount"]?.intValue == 2)
        #expect(report.text.contains("FAILED: 2 of 10 http inputs missing"))
    }

    @Test func duplicatesPassWhereTheSourceIsAtLeastOnce() {
        let ledger = DrillLedger()
        ledger.sent("m1", at: 0)
        ledger.record(.answered, for: "m1", at: 0.1)
        ledger.record(.answered, for: "m1", at: 0.2)
        let report = DrillReport.make(route: "q", id: "d", faults: [], duration: 1, settle: 1, ledgers: [("stomp", ledger, true)], events: [])
        #expect(report.passed)
        #expect(report.tallies[0].duplicated == 1)
        #expect(report.text.contains("1 (allowed: at-least-once)"))
    }

    @Test func theLoadIsCutIntoPhasesAtEachFault() {
        let events = [FaultEvent(fault: "kill:uppercase@2s/1s", occurrence: 1, start: 2, end: 3.5, detail: "SIGKILL", applied: true)]
        let report = DrillReport.make(route: "text", id: "d", faults: ["kill:uppercase@2s/1s"], duration: 10, settle: 1, ledgers: [("http", self.ledger(), false)], events: events)
        #expect(report.phases.map(\.name) == ["before any fault", "during kill:uppercase@2s/1s #1", "after kill:uppercase@2s/1s #1"])
        #expect(report.phases.map(\.sent) == [2, 2, 6])
        #expect(report.phases[2].missing == 2)
        // i0 took 10 ms, i1 20 ms: the median of two is the second.
        #expect(report.phases[0].p50 == 20.000000000000018 || abs((report.phases[0].p50 ?? 0) - 20) < 0.001)
        #expect(abs((report.phases[0].max ?? 0) - 20) < 0.001)
    }
}
