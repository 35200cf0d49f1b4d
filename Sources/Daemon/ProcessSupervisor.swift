import Foundation
public import Logging
public import ServiceLifecycle
import SkyLib
import Subprocess
import Synchronization
import SystemPackage

/// Keeps one process running: starts it, and when it exits for any reason but our own
/// shutdown, starts it again after a back-off (100 ms, doubling to 30 s, back to 100 ms once
/// it has run for 10 s). Five exits within a minute is a crash loop: it is reported (log and a
/// registry event) and the back-off stays long, so a broken program is never spun.
/// On graceful shutdown the process gets SIGTERM, and SIGKILL if it has not exited in 10 s.
///
/// ``stop()`` and ``restart()`` do the same for one program on a remote command: a stopped
/// program stays stopped (``run()`` returns), a restarted one starts again at once, without
/// back-off and without counting towards a crash loop.
public final class ProcessSupervisor: Service, Sendable {
    /// What the supervisor was asked to do with its running process.
    private enum Request { case none, stop, restart }

    /// The instance's name in logs and events (`uppercase#2`).
    public let name: String
    /// The program run.
    public let executable: String
    /// Its arguments.
    public let arguments: [String]
    /// Its whole environment.
    public let environment: [String: String]
    /// Records the program's events (`restarted`, `crash-loop`) in the registry.
    private let onEvent: @Sendable (_ kind: String, _ message: String) async -> Void
    /// Told at once when the process ends (pid, how), so its node record goes.
    private let onExit: @Sendable (_ pid: Int32, _ status: String) async -> Void
    /// The supervisor's logger, with the program's name.
    private let logger: Logger
    /// The running process and the latch its exit opens.
    private let current = Mutex<(pid: Int32, exited: Latch)?>(nil)
    /// A stop or restart asked for by command, read by the loop that ends the process.
    private let request = Mutex(Request.none)
    /// How the process last ended, for the command's acknowledgement.
    private let lastStatus = Mutex<TerminationStatus?>(nil)
    /// Restarts after an exit, for `/debug/vars` (`daemon.NAME-restarted`).
    private let restartCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - onEvent: told of crash loops (`crash-loop`) and restarts (`restarted`).
    ///   - onExit: told each time the process ends, with its pid and how it ended, at once
    ///     (so its registry record can go before a reaper would notice).
    public init(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String],
        logger: Logger,
        onEvent: @escaping @Sendable (_ kind: String, _ message: String) async -> Void = { _, _ in },
        onExit: @escaping @Sendable (_ pid: Int32, _ status: String) async -> Void = { _, _ in }
    ) {
        self.name = name
        self.onExit = onExit
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.onEvent = onEvent
        var logger = logger
        logger[metadataKey: "program"] = "\(name)"
        self.logger = logger
    }

    /// The running process's id, if one is running.
    public var pid: Int32? { self.current.withLock { $0.map(\.pid) } }

    /// How many times the process was started again.
    public var restarts: Int { self.restartCount.load(ordering: .relaxed) }

    public func run() async throws {
        var delay = Duration.milliseconds(100)
        var exits: [ContinuousClock.Instant] = []
        var reportedLoop = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            let status: String
            do {
                let (ended, pid) = try await self.runOnce()
                status = Self.describe(ended)
                await self.onExit(pid, status)
            } catch {
                self.logger.error("cannot start: \(error)")
                status = "not started: \(error)"
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            switch self.request.withLock({ request in defer { request = .none }; return request }) {
            case .stop:
                self.logger.notice("stopped on request (\(status)); not starting it again")
                return
            case .restart:
                self.logger.notice("restarting on request (\(status))")
                self.restartCount.add(1, ordering: .relaxed)
                continue
            case .none:
                break
            }
            if ContinuousClock.now - started > .seconds(10) { delay = .milliseconds(100) }
            exits.append(ContinuousClock.now)
            exits.removeAll { ContinuousClock.now - $0 > .seconds(60) }
            if exits.count >= 5 {
                delay = .seconds(30)
                if !reportedLoop {
                    reportedLoop = true
                    let message = "\(self.name) exited \(exits.count) times in a minute (last: \(status)); restarting every 30 s"
                    self.logger.error("crash loop: \(message)")
                    await self.onEvent("crash-loop", message)
                }
            } else {
                reportedLoop = false
            }
            self.logger.warning("\(status); starting it again in \(delay)")
            // A stop during the wait (up to 30 s in a crash loop) ends it at once: the daemon's
            // shutdown waited for it, past the time its own supervisor allows.
            try? await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            // Stopped while waiting to start again: stay stopped.
            if self.request.withLock({ $0 }) == .stop { return }
            self.restartCount.add(1, ordering: .relaxed)
            await self.onEvent("restarted", "\(self.name) restarted after it ended (\(status))")
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// Starts the process and waits for it to end. Graceful shutdown, ``stop()`` and
    /// ``restart()`` end it with SIGTERM, then SIGKILL if it has not exited 10 s later;
    /// cancellation kills it at once.
    ///
    /// swift-subprocess starts it with a clean signal mask: the threads of a Swift process
    /// block most signals, and a child started with Foundation's `Process` inherits that mask,
    /// so a program that does not reset it (most do not) would never see the SIGTERM.
    private func runOnce() async throws -> (TerminationStatus, pid: Int32) {
        let exited = Latch()
        let started = Locked<Int32>(0)
        defer {
            self.current.withLock { $0 = nil }
            exited.open()
        }
        let environment = Environment.custom(Dictionary(uniqueKeysWithValues: self.environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
        let result = try await withThrowingTaskGroup(of: TerminationStatus?.self) { group in
            group.addTask {
                try await Subprocess.run(
                    .path(FilePath(self.executable)), arguments: Arguments(self.arguments), environment: environment,
                    input: .none, output: .currentStandardOutput, error: .currentStandardError
                ) { execution in
                    let pid = execution.processIdentifier.value
                    self.current.withLock { $0 = (pid, exited) }
                    started.withLock { $0 = pid }
                    self.logger.info("started", metadata: ["pid": "\(pid)"])
                }.terminationStatus
            }
            group.addTask {
                // Waits for a reason to end the process, then ends it; cancelled once it exited.
                while !Task.isShuttingDownGracefully && self.request.withLock({ $0 }) == .none {
                    try await Task.sleep(for: .milliseconds(50))
                }
                self.signal(SIGTERM)
                try await Task.sleep(for: .seconds(10))
                self.logger.warning("still running 10 s after SIGTERM; killing it")
                self.signal(SIGKILL)
                return nil
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let status = next { return status }
            }
            throw CancellationError()
        }
        self.lastStatus.withLock { $0 = result }
        return (result, started.withLock { $0 })
    }

    private func signal(_ signal: Int32) {
        if let pid = self.pid { kill(pid, signal) }
    }

    /// `exit status 0`, `killed by signal 9`.
    static func describe(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }

    /// Stops the program for good: SIGTERM, SIGKILL after 10 s; ``run()`` then returns.
    /// - Returns: how it ended, for the command's acknowledgement.
    public func stop() async -> String {
        await self.end(.stop)
    }

    /// Stops the program as ``stop()`` does, and starts it again at once.
    public func restart() async -> String {
        await self.end(.restart)
    }

    private func end(_ request: Request) async -> String {
        guard let (pid, exited) = self.current.withLock({ $0 }) else {
            // Between an exit and the next start: a stop keeps it from starting again; a
            // restart is what is about to happen anyway.
            if request == .stop { self.request.withLock { $0 = .stop } }
            return "was not running (it had exited and was waiting to start again)"
        }
        self.request.withLock { $0 = request }
        await exited.wait()
        let status = self.lastStatus.withLock { $0 }.map(Self.describe) ?? "ended"
        return "pid \(pid) drained and exited (\(status))"
    }
}
