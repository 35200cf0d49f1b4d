import Foundation
public import Logging
public import ServiceLifecycle
import SkyLib
import Synchronization

/// Supervises the programs of one host (``DaemonConfiguration``): one ``ProcessSupervisor``
/// per instance, all stopped together on graceful shutdown.
///
/// It also acts on remote commands: `deploy` (addressed to the daemon) starts more instances
/// of a service, and `stop` / `restart` addressed to one of its programs' nodes are carried
/// out here, because the daemon owns those processes (they run with `SKYNET_SUPERVISOR` set,
/// so they leave these two commands to it).
public final class Daemon: Service, Sendable {
    /// The programs being supervised, and how many instances of each were started (to number new
    /// ones).
    private struct State {
        var supervisors: [ProcessSupervisor] = []
        /// Instances started so far per program, to number new ones.
        var counts: [String: Int] = [:]
        var adding: AsyncStream<ProcessSupervisor>.Continuation?
    }

    /// The daemon file it was started with.
    public let configuration: DaemonConfiguration
    /// The `sky` binary, to run built-in services (`sky service NAME`).
    public let executable: String
    /// Services `sky service NAME` can host, which `deploy` may start without a file entry.
    public let builtinServices: Set<String>
    /// Given to every program: the registry address travels here, never in argv.
    private let environment: [String: String]
    /// Records a program's event (`crash-loop`, `restarted` …) in the registry.
    private let onEvent: @Sendable (_ program: String, _ kind: String, _ message: String) async -> Void
    /// Told at once when a program's process ends, so its node record goes before a reaper would
    /// notice.
    private let onProgramExit: @Sendable (_ program: String, _ pid: Int32, _ status: String) async -> Void
    /// The daemon's logger.
    private let logger: Logger
    /// Changed by `deploy` commands while `run()` supervises, hence locked.
    private let state = Mutex(State())
    /// Supervisors added while running (`deploy`), picked up by `run()`'s task group.
    private let additions: AsyncStream<ProcessSupervisor>

    /// - Parameters:
    ///   - environment: given to every program (the registry address travels here, never in
    ///     argv, so credentials stay out of the process list).
    ///   - onProgramExit: told at once when a program's process ends (pid, how it ended).
    public init(
        configuration: DaemonConfiguration,
        executable: String,
        builtinServices: Set<String> = [],
        environment: [String: String],
        logger: Logger,
        onEvent: @escaping @Sendable (_ program: String, _ kind: String, _ message: String) async -> Void = { _, _, _ in },
        onProgramExit: @escaping @Sendable (_ program: String, _ pid: Int32, _ status: String) async -> Void = { _, _, _ in }
    ) {
        self.onProgramExit = onProgramExit
        self.configuration = configuration
        self.executable = executable
        self.builtinServices = builtinServices
        self.environment = environment
        self.onEvent = onEvent
        self.logger = logger
        let (stream, continuation) = AsyncStream.makeStream(of: ProcessSupervisor.self)
        self.additions = stream
        self.state.withLock { $0.adding = continuation }
        for program in configuration.programs {
            _ = self.add(program, instances: program.instances, start: false)
        }
    }

    /// The supervisors of the programs running now (stopped ones are gone).
    public var supervisors: [ProcessSupervisor] { self.state.withLock { $0.supervisors } }

    public func run() async throws {
        let initial = self.supervisors
        try await withThrowingDiscardingTaskGroup { group in
            for supervisor in initial {
                group.addTask { try await self.supervise(supervisor) }
            }
            // Instances added by `deploy` join the group until shutdown.
            await withGracefulShutdownHandler {
                for await supervisor in self.additions {
                    group.addTask { try await self.supervise(supervisor) }
                }
            } onGracefulShutdown: {
                self.state.withLock { $0.adding?.finish() }
            }
        }
    }

    /// Runs one program's supervisor; once it returns (shutdown, or stopped on request) it is
    /// forgotten.
    private func supervise(_ supervisor: ProcessSupervisor) async throws {
        try await supervisor.run()
        // It returns on shutdown, or when stopped on request: either way it is gone.
        self.state.withLock { $0.supervisors.removeAll { $0 === supervisor } }
    }

    /// Starts `instances` more instances of `service`: the file's entry for it when there is
    /// one, else the built-in service of that name.
    /// - Returns: the new supervisors' names.
    /// - Throws: ``SkyError`` (`configuration_error`) when the daemon knows no such service.
    public func deploy(service: String, instances: Int) throws -> [String] {
        guard (1...64).contains(instances) else { throw SkyError(.configuration, "instances must be 1 to 64, not \(instances)") }
        let program: DaemonConfiguration.Program
        if let known = self.configuration.programs.first(where: { $0.name == service }) {
            program = known
        } else if self.builtinServices.contains(service) {
            program = DaemonConfiguration.Program(name: service)
        } else {
            let known = self.configuration.programs.map(\.name) + self.builtinServices.sorted()
            throw SkyError(.configuration, "this daemon cannot run '\(service)': it is not in its file and not built in (it can run: \(known.joined(separator: ", ")))")
        }
        return self.add(program, instances: instances, start: true)
    }

    /// Makes `instances` supervisors for `program` (a command of its own, or `sky service NAME`),
    /// numbered after the ones before, and starts them when the daemon runs.
    @discardableResult
    private func add(_ program: DaemonConfiguration.Program, instances: Int, start: Bool) -> [String] {
        let (path, arguments): (String, [String])
        if let command = program.command {
            path = command[0].hasPrefix("/") ? command[0] : "/usr/bin/env"
            arguments = command[0].hasPrefix("/") ? Array(command.dropFirst()) : command
        } else {
            path = self.executable
            arguments = ["service", program.name] + program.flags
        }
        return self.state.withLock { state in
            (0..<instances).map { _ in
                let number = state.counts[program.name, default: 0] + 1
                state.counts[program.name] = number
                let supervisor = ProcessSupervisor(
                    name: "\(program.name)#\(number)", executable: path, arguments: arguments, environment: self.environment, logger: self.logger,
                    onEvent: { kind, message in await self.onEvent(program.name, kind, message) },
                    onExit: { pid, status in await self.onProgramExit(program.name, pid, status) }
                )
                state.supervisors.append(supervisor)
                if start { state.adding?.yield(supervisor) }
                return supervisor.name
            }
        }
    }

    /// The supervisor whose running process has this pid.
    public func supervisor(pid: Int32) -> ProcessSupervisor? {
        self.supervisors.first { $0.pid == pid }
    }
}
