import Foundation
public import Logging
public import ServiceLifecycle
import SkyLib
import Synchronization

/// Keeps one process running: starts it, and when it exits for any reason but our own
/// shutdown, starts it again after a back-off (100 ms, doubling to 30 s, back to 100 ms once
/// it has run for 10 s). Five exits within a minute is a crash loop: it is reported (log and a
/// registry event) and the back-off stays long, so a broken program is never spun.
/// On graceful shutdown the process gets SIGTERM, and SIGKILL if it has not exited in 10 s.
public final class ProcessSupervisor: Service, Sendable {
    public let name: String
    public let executable: String
    public let arguments: [String]
    public let environment: [String: String]
    private let onEvent: @Sendable (_ kind: String, _ message: String) async -> Void
    private let logger: Logger
    private let current = Mutex<Process?>(nil)
    private let restartCount = Atomic<Int>(0)

    /// - Parameter onEvent: told of crash loops (`crash-loop`) and restarts (`restarted`).
    public init(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String],
        logger: Logger,
        onEvent: @escaping @Sendable (_ kind: String, _ message: String) async -> Void = { _, _ in }
    ) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.onEvent = onEvent
        var logger = logger
        logger[metadataKey: "program"] = "\(name)"
        self.logger = logger
    }

    /// The running process's id, if one is running.
    public var pid: Int32? { self.current.withLock { $0.map(\.processIdentifier) } }

    /// How many times the process was started again.
    public var restarts: Int { self.restartCount.load(ordering: .relaxed) }

    public func run() async throws {
        var delay = Duration.milliseconds(100)
        var exits: [ContinuousClock.Instant] = []
        var reportedLoop = false
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let started = ContinuousClock.now
                let status: Int32
                do {
                    status = try await self.runOnce()
                } catch {
                    self.logger.error("cannot start: \(error)")
                    status = -1
                }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                if ContinuousClock.now - started > .seconds(10) { delay = .milliseconds(100) }
                exits.append(ContinuousClock.now)
                exits.removeAll { ContinuousClock.now - $0 > .seconds(60) }
                if exits.count >= 5 {
                    delay = .seconds(30)
                    if !reportedLoop {
                        reportedLoop = true
                        let message = "\(self.name) exited \(exits.count) times in a minute (last status \(status)); restarting every 30 s"
                        self.logger.error("crash loop: \(message)")
                        await self.onEvent("crash-loop", message)
                    }
                } else {
                    reportedLoop = false
                }
                self.logger.warning("exited with status \(status); starting it again in \(delay)")
                try? await Task.sleep(for: delay)
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                self.restartCount.add(1, ordering: .relaxed)
                await self.onEvent("restarted", "\(self.name) restarted after exit status \(status)")
                delay = min(delay * 2, .seconds(30))
            }
        } onGracefulShutdown: {
            self.signal(SIGTERM)
        }
    }

    /// Starts the process and waits for it to exit; on cancellation it is killed.
    private func runOnce() async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.executable)
        process.arguments = self.arguments
        process.environment = self.environment
        let exited = Latch()
        process.terminationHandler = { _ in exited.open() }
        try process.run()
        self.current.withLock { $0 = process }
        self.logger.info("started", metadata: ["pid": "\(process.processIdentifier)"])
        await withTaskCancellationHandler {
            await exited.wait()
        } onCancel: {
            kill(process.processIdentifier, SIGKILL)
        }
        if Task.isShuttingDownGracefully { await self.waitAfterTerm(process, exited: exited) }
        self.current.withLock { $0 = nil }
        return process.terminationStatus
    }

    /// After SIGTERM: the process has 10 s to drain and exit, then it is killed.
    private func waitAfterTerm(_ process: Process, exited: Latch) async {
        let deadline = ContinuousClock.now + .seconds(10)
        while !exited.isOpen && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if !exited.isOpen {
            kill(process.processIdentifier, SIGKILL)
            await exited.wait()
        }
    }

    private func signal(_ signal: Int32) {
        if let pid = self.pid { kill(pid, signal) }
    }
}
