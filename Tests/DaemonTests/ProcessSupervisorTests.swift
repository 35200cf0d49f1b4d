import Daemon
import Foundation
import Logging
import Testing

/// Stop and restart on request, with real child processes.
@Suite(.timeLimit(.minutes(1)))
struct ProcessSupervisorTests {
    static func waitForPID(_ supervisor: ProcessSupervisor, otherThan old: Int32? = nil) async throws -> Int32 {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let pid = supervisor.pid, pid != old { return pid }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    @Test func restartStartsAgainAtOnceAndStopEndsSupervision() async throws {
        let supervisor = ProcessSupervisor(
            name: "sleeper#1", executable: "/bin/sleep", arguments: ["60"], environment: [:], logger: Logger(label: "test")
        )
        let running = Task { try await supervisor.run() }
        defer { running.cancel() }
        let first = try await Self.waitForPID(supervisor)

        let restarted = await supervisor.restart()
        #expect(restarted.contains("pid \(first)") && restarted.contains("signal 15"), "\(restarted)")
        let second = try await Self.waitForPID(supervisor, otherThan: first)
        #expect(second != first && kill(first, 0) != 0)
        #expect(supervisor.restarts == 1)

        let stopped = await supervisor.stop()
        #expect(stopped.contains("pid \(second)"))
        // Supervision ends: run() returns, and nothing is started again.
        try await running.value
        #expect(supervisor.pid == nil && kill(second, 0) != 0)
    }
}
