import ArgumentParser
import Daemon
import Foundation
import Logging
import NodeRuntime
import RegistryKit
import Services
import SkyLib
import RouteModel

/// `sky daemon`: keeps the services of this host running.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run and supervise the services of this host from a YAML file: restart crashed ones with back-off, report crash loops, stop all on SIGTERM.",
        discussion: """
            The file lists `services:`, each with `name:`, `instances:` (default 1), and either \
            `flags:` for a built-in service (run as `sky service NAME FLAGS…`) or `command:` for \
            any program. The daemon registers itself as a node of kind `daemon`; the registry \
            address reaches the programs in SKYNET_REGISTRY.
            """
    )

    /// Read once at start: a changed file takes effect at the next start of the daemon, while `sky
    /// deploy` adds instances live.
    @Argument(help: "The daemon file (YAML).")
    var file: String

    @OptionGroup var common: CommonOptions

    @OptionGroup var admin: AdminOptions

    /// Supervises the file's programs and acts on commands: `deploy` addressed to the daemon starts
    /// instances, `stop` and `restart` addressed to a program's node are carried out here (the
    /// program, started with `SKYNET_SUPERVISOR`, leaves them to us). The registry address goes to
    /// the programs in their environment, never in argv, so credentials stay out of the process
    /// list; a program that exits has its node record removed at once rather than when a reaper
    /// notices.
    func run() async throws {
        let configuration = try DaemonConfiguration.load(path: self.file)
        let address = try RegistryAddress.resolve(flag: self.common.registry)
        let context = try await self.common.context()
        let (registry, counters, logger) = (context.registry, context.counters, context.logger)
        let nodeID = Identifiers.nodeID()
        var environment = ProcessInfo.processInfo.environment
        environment["SKYNET_REGISTRY"] = address.uri
        // Programs leave `sky stop` and `sky restart` to the daemon (``ProgramCommands``).
        environment["SKYNET_SUPERVISOR"] = nodeID
        let daemon = Daemon(
            configuration: configuration,
            executable: ProcessLifecycle.executablePath,
            builtinServices: Set(BuiltinServices.names),
            environment: environment,
            logger: logger,
            onEvent: { program, kind, message in
                counters.add("daemon.\(program)-\(kind)")
                try? await registry.record(RegistryEvent(kind: kind, nodeID: nodeID, service: program, message: message))
            },
            onProgramExit: { program, pid, status in
                await ProgramRecords.remove(of: program, pid: pid, status: status, registry: registry, counters: counters, logger: logger)
            }
        )
        var control = context.lifecycle.nodeControl
        control.handlers[.deploy] = { command in
            let service = command.arguments["service"] ?? ""
            let instances = Int(command.arguments["instances"] ?? "1") ?? 0
            let started = try daemon.deploy(service: service, instances: instances)
            return .done("started \(started.joined(separator: ", "))")
        }
        let presence = context.presence(nodeID: nodeID, kind: .daemon, service: "daemon", address: "-", control: control) {
            ["programs": Int64(daemon.supervisors.count)]
        }
        Output.line("daemon running \(daemon.supervisors.count) programs from \(self.file)")
        try await context.run([
            presence.presence, context.adminServer(at: self.admin.address(in: context), presence: presence), daemon,
            ProgramCommands(daemon: daemon, registry: registry, daemonNodeID: nodeID, logger: logger),
        ])
    }
}
