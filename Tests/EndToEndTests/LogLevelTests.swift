import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// SIGUSR1 raises the log level and SIGUSR2 lowers it, in a running process, and says so.
@Suite(.timeLimit(.minutes(1)))
struct LogLevelTests {
    @Test func signalsChangeTheLogLevel() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let service = try SkyProcess(["service", "echo", "--registry", scratch.registry, "--log-level", "info"], name: "echo", directory: scratch.path)
        _ = try await service.waitForWord(after: "ready at ")
        service.signal(SIGUSR1)
        #expect(await eventually { service.stderr.contains("log level changed by SIGUSR1") && service.stderr.contains("level=debug") })
        // One at a time: two pending signals of one kind arrive as one.
        service.signal(SIGUSR2)
        #expect(await eventually { service.stderr.contains("log level changed by SIGUSR2") && service.stderr.contains("level=info") })
        service.signal(SIGUSR2)
        #expect(await eventually { service.stderr.contains("level=notice") })
        service.signal(SIGTERM)
        #expect(try await service.waitForExit() == 0)
    }
}
