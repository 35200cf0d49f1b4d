import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// `sky route test`: the example routes' own tests pass; a failing case prints its file:line
/// and a diff and exits 1; a broken test file is named with its line.
@Suite(.timeLimit(.minutes(2)))
struct RouteTestCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func theExampleRoutesPassTheirOwnTests() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let run = try SkyProcess(["route", "test", Self.root + "/Routes"], name: "route-test", directory: scratch.path)
        #expect(try await run.waitForExit() == 0, "\(run.stdoutLines)")
        let summary = try #require(run.stdoutLines.last)
        #expect(summary.hasSuffix("0 failed, in 3 test file(s)") && !summary.hasPrefix("0 passed"), "\(summary)")
        // The route check still reads only the routes, not their tests.
        let check = try SkyProcess(["route", "check", Self.root + "/Routes"], name: "route-check", directory: scratch.path)
        #expect(try await check.waitForExit() == 0, "\(check.stdoutLines)")
        #expect(check.stdoutLines.allSatisfy { !$0.contains(".test.yaml") })
    }

    @Test func aFailingCaseShowsWhereAndADiff() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", """
            name: shout
            steps:
              - service: uppercase
              - choice:
                  - when: { path: text, matches: "[A-Z ]+" }
                    steps: [ { service: wordcount, merge: true } ]
            """)
        try """
            route: shout
            cases:
              - name: right
                input: { text: "a b" }
                services:
                  uppercase: [ { text: "A B" } ]
                  wordcount: [ { words: 2 } ]
                expect: { text: "A B", words: 2 }

              - name: wrong count
                input: { text: "a b" }
                services:
                  uppercase: [ { text: "A B" } ]
                  wordcount: [ { words: 3 } ]
                expect: { text: "A B", words: 2 }
            """.write(toFile: scratch.path + "/Routes/shout.test.yaml", atomically: true, encoding: .utf8)
        let run = try SkyProcess(["route", "test", "Routes"], name: "route-test", directory: scratch.path)
        #expect(try await run.waitForExit() == 1)
        let lines = run.stdoutLines
        #expect(lines.contains("ok    Routes/shout.test.yaml:3 right"), "\(lines)")
        #expect(lines.contains("FAIL  Routes/shout.test.yaml:10 wrong count"), "\(lines)")
        #expect(lines.contains("      - words: 2") && lines.contains("      + words: 3"), "\(lines)")
        #expect(lines.last == "1 passed, 1 failed, in 1 test file(s)")

        try "route: shout\ncases:\n  - name: x\n    input: 1\n".write(toFile: scratch.path + "/Routes/shout.test.yaml", atomically: true, encoding: .utf8)
        let broken = try SkyProcess(["route", "test", "Routes"], name: "route-test-broken", directory: scratch.path)
        #expect(try await broken.waitForExit() == 1)
        #expect(broken.stdoutLines.contains { $0.hasPrefix("Routes/shout.test.yaml:3") && $0.contains("needs one of 'expect'") }, "\(broken.stdoutLines)")
    }

    /// A case with a 30 s timeout and a service that never answers passes in the time of a
    /// command, on the virtual clock, and says how long it took there.
    @Test func faultsRunOnAVirtualClock() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("slow.yaml", "name: slow\ntimeout: 30s\nsteps:\n  - service: lookup\n")
        try """
            route: slow
            cases:
              - name: lookup never answers
                input: { id: 1 }
                faults:
                  lookup: [ { hang: true } ]
                expectError: deadline_exceeded
                elapsed: 30s
            """.write(toFile: scratch.path + "/Routes/slow.test.yaml", atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let run = try SkyProcess(["route", "test", "Routes"], name: "route-test", directory: scratch.path)
        #expect(try await run.waitForExit() == 0, "\(run.stdoutLines)")
        #expect(ContinuousClock.now - started < .seconds(20), "the 30 s timeout was waited out for real")
        #expect(run.stdoutLines.contains("ok    Routes/slow.test.yaml:3 lookup never answers (30s virtual)"), "\(run.stdoutLines)")
    }
}
