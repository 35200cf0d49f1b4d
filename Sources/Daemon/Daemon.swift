public import Logging
public import ServiceLifecycle
import SkyLib

/// Supervises the programs of one host (``DaemonConfiguration``): one ``ProcessSupervisor``
/// per instance, all stopped together on graceful shutdown.
public struct Daemon: Service {
    public let supervisors: [ProcessSupervisor]

    /// - Parameters:
    ///   - executable: the `sky` binary, to run built-in services (`sky service NAME`).
    ///   - environment: given to every program (the registry address travels here, never in
    ///     argv, so credentials stay out of the process list).
    public init(
        configuration: DaemonConfiguration,
        executable: String,
        environment: [String: String],
        logger: Logger,
        onEvent: @escaping @Sendable (_ program: String, _ kind: String, _ message: String) async -> Void = { _, _, _ in }
    ) {
        var supervisors: [ProcessSupervisor] = []
        for program in configuration.programs {
            for instance in 1...program.instances {
                let (path, arguments): (String, [String])
                if let command = program.command {
                    path = command[0].hasPrefix("/") ? command[0] : "/usr/bin/env"
                    arguments = command[0].hasPrefix("/") ? Array(command.dropFirst()) : command
                } else {
                    path = executable
                    arguments = ["service", program.name] + program.flags
                }
                supervisors.append(ProcessSupervisor(
                    name: "\(program.name)#\(instance)", executable: path, arguments: arguments, environment: environment, logger: logger,
                    onEvent: { kind, message in await onEvent(program.name, kind, message) }
                ))
            }
        }
        self.supervisors = supervisors
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for supervisor in self.supervisors {
                group.addTask { try await supervisor.run() }
            }
        }
    }
}
