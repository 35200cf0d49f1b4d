import SkyLib
import RouteModel
import Testing

@testable import Dashboard

/// Rates on one denominator: a window that holds the end of attempts started before it
/// (calls are counted at the start, errors at the end) once showed a step at 200 %.
struct ClusterViewTests {
    static func stats(calls: Int64, succeeded: Int64, errors: Int64) -> RouterStats {
        RouterStats(json: [
            "routes": [[
                "route": "r", "processed": .int(succeeded), "errors": .int(errors),
                "steps": [["service": "s", "calls": .int(calls), "succeeded": .int(succeeded), "errors": .int(errors), "retries": 0]],
            ]]
        ])
    }

    @Test func aStepsErrorRateIsFailedAttemptsOverEndedAttemptsAndNeverPasses100Percent() throws {
        // In the window: one attempt started, two ended, both failed.
        let earlier = Self.stats(calls: 10, succeeded: 8, errors: 1)
        let later = Self.stats(calls: 11, succeeded: 8, errors: 3)
        let rows = ClusterView.rows(later.subtracting(earlier), seconds: 1)
        let step = try #require(rows.first?.steps.first)
        #expect(step.rates.errorRate == 1)
        #expect(step.rates.perSecond == 2)
        // Half of four ended attempts failed: 50 %.
        let mixed = ClusterView.rows(Self.stats(calls: 4, succeeded: 2, errors: 2).subtracting(Self.stats(calls: 0, succeeded: 0, errors: 0)), seconds: 2)
        #expect(mixed.first?.steps.first?.rates.errorRate == 0.5)
        #expect(mixed.first?.rates.errorRate == 0.5)
    }
}
