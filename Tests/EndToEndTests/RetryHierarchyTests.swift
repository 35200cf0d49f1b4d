import Foundation
import SkyLib
import SkyTestSupport
import Testing

/// Which retry setting wins, as README's "Retries, from the service to the source" says, through
/// the real `sky run`: the service says whether a failure may be retried; the step says how
/// many attempts and how far apart; the route's deadline bounds them all; the source decides
/// what happens to what still failed (here a file: parked, never retried by the folder), and
/// `sky failed redrive` is the last retry, by hand.
@Suite(.timeLimit(.minutes(2)))
struct RetryHierarchyTests {
    @Test func serviceThenStepThenRouteThenSource() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        // flaky fails the first two calls of each request, retryably; wordcount refuses a
        // document without text (bad_request: the caller's error, not retryable).
        try scratch.writeRoute("enough.yaml", "name: enough\nsteps:\n  - service: flaky\n    retry: { attempts: 4, backoff: 10ms }\n")
        try scratch.writeRoute("few.yaml", """
            name: few
            from:
              - files: { dir: drop/few, pattern: "*.json" }
            steps:
              - service: flaky
                retry: { attempts: 2, backoff: 10ms }
            """)
        try scratch.writeRoute("deadline.yaml", "name: deadline\ntimeout: 300ms\nsteps:\n  - service: flaky\n    retry: { attempts: 4, backoff: 1s, max: 1s }\n")
        try scratch.writeRoute("refused.yaml", "name: refused\nsteps:\n  - service: wordcount\n    retry: { attempts: 4, backoff: 10ms }\n")
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        func calls(_ service: String) async throws -> Int64 { try await HTTP.get("\(base)/debug/vars").json["step.\(service)-calls"]?.intValue ?? 0 }

        // The step's attempts get through a service's transient failures: three calls.
        var answer = try await HTTP.post("\(base)/routes/enough", #"{"text":"hi"}"#)
        #expect(answer.status == 200 && answer.json["attempts"] == 3)
        #expect(try await calls("flaky") == 3)

        // Fewer attempts than failures: the step gives up after its two.
        answer = try await HTTP.post("\(base)/routes/few", #"{"text":"hi"}"#)
        #expect(answer.status == 502 && answer.json["error"]?["code"] == "step_failed")
        #expect(try await calls("flaky") == 5)

        // The route's deadline wins over the step's attempts: the 1 s back-off would pass it,
        // so after the first failed call the step ends at once, attempts to spare, saying why.
        let started = ContinuousClock.now
        answer = try await HTTP.post("\(base)/routes/deadline", #"{"text":"hi"}"#)
        #expect(answer.status == 502 && answer.json["error"]?["code"] == "step_failed", "\(answer.status) \(answer.json)")
        #expect(answer.json["error"]?["message"]?.stringValue?.hasSuffix("(no time left for attempt 2 before the route deadline)") == true)
        #expect(ContinuousClock.now - started < .milliseconds(900), "the route waited out the step's back-off")
        #expect(try await calls("flaky") == 6)

        // The service wins over the step: a failure it says is not retryable is tried once.
        answer = try await HTTP.post("\(base)/routes/refused", #"{"no":"text"}"#)
        #expect(answer.status == 422 && answer.json["error"]?["code"] == "rejected")
        #expect(try await calls("wordcount") == 1)

        // The source decides what still failed: a file is parked in .failed/ once, not retried
        // by the folder; `sky failed redrive` is the retry by hand. The redrive is a new
        // request, which flaky fails twice again: the step's two attempts are still not enough,
        // and the file comes back failed, attempt 2.
        let folder = scratch.path + "/drop/few"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try #"{"text":"hi"}"#.write(toFile: folder + "/.one.json", atomically: false, encoding: .utf8)
        _ = rename(folder + "/.one.json", folder + "/one.json")
        #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: folder + "/.failed/one.json") })
        #expect(try await calls("flaky") == 8, "the folder retried the file itself")
        #expect(await eventually(within: 10) {
            (try? await Command.run([SkyProcess.binary, "failed", "list", "--route", "few", "--registry", scratch.registry]))?.output.contains("one.json") == true
        })
        let redrive = try await Command.run([SkyProcess.binary, "failed", "redrive", "--route", "few", "--wait", "--timeout", "20", "--registry", scratch.registry])
        #expect(redrive.status == 1 && redrive.output.contains("attempt 2"), "\(redrive.status) \(redrive.output)")
        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect(vars["step.flaky-calls"] == 10, "\(vars)")
    }
}
