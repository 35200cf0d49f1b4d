import AdminHTTP
import ArgumentParser
import Daemon
import Foundation
import Logging
import ServiceLifecycle
import Services
import SkyLib
import UnixSignals

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

    @Argument(help: "The daemon file (YAML).")
    var file: String

    @OptionGroup var common: CommonOptions

    @Option(help: "HOST:PORT of the admin endpoints (/health, /debug/vars, /metrics); port 0 picks a free one.")
    var admin: HostPort = HostPort(host: "127.0.0.1", port: 0)

    /// A program's process ended: its node records (this host, its pid) are removed at once,
    /// so tools and routers stop counting a dead node instead of waiting for a reaper's TTL.
    /// A program that drained and deregistered itself has none left; nothing is removed then.
    static func removeRecords(
        of program: String, pid: Int32, status: String, registry: any Registry, daemonNodeID: String, counters: Counters, logger: Logger
    ) async {
        guard pid > 0 else { return }
        let host = ProcessInfo.processInfo.hostName
        do {
            let records = try await registry.nodes().filter { $0.pid == pid && $0.host == host && $0.kind != .daemon }
            for record in records {
                try await registry.deregister(nodeID: record.id)
                counters.add("daemon.\(program)-records-removed")
                try await registry.record(RegistryEvent(
                    kind: "exited", nodeID: record.id, service: record.service,
                    message: "\(record.service) at \(record.address) (pid \(pid)) ended (\(status)); its daemon removed the record at once"
                ))
            }
        } catch {
            // The reaper removes it after its TTL instead; nothing is lost but time.
            counters.add("daemon.record-removal-errors")
            logger.error("cannot remove the record of a program that ended; the reaper will", metadata: ["program": "\(program)", "pid": "\(pid)", "error": "\(error)"])
        }
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let configuration = try DaemonConfiguration.load(path: self.file)
        let token = try CommonOptions.token()
        let address = try RegistryAddress.resolve(flag: self.common.registry)
        let registry = try await address.open()
        let counters = Counters()
        counters.bootstrapMetricsSystem()
        let nodeID = Identifiers.nodeID()
        var environment = ProcessInfo.processInfo.environment
        environment["SKYNET_REGISTRY"] = address.uri
        // Programs leave `sky stop` and `sky restart` to the daemon (``ProgramCommands``).
        environment["SKYNET_SUPERVISOR"] = nodeID
        let daemon = Daemon(
            configuration: configuration,
            executable: ProcessControl.executablePath,
            builtinServices: Set(BuiltinServices.names),
            environment: environment,
            logger: logger,
            onEvent: { program, kind, message in
                counters.add("daemon.\(program)-\(kind)")
                try? await registry.record(RegistryEvent(kind: kind, nodeID: nodeID, service: program, message: message))
            },
            onProgramExit: { program, pid, status in
                await Self.removeRecords(of: program, pid: pid, status: status, registry: registry, daemonNodeID: nodeID, counters: counters, logger: logger)
            }
        )
        var control = NodeControl.process
        control.handlers[.deploy] = { command in
            let service = command.arguments["service"] ?? ""
            let instances = Int(command.arguments["instances"] ?? "1") ?? 0
            let started = try daemon.deploy(service: service, instances: instances)
            return .done("started \(started.joined(separator: ", "))")
        }
        let region = self.common.region
        let adminAddress = Locked<String?>(nil)
        let presence = NodePresence(registry: registry, nodeID: nodeID, control: control, logger: logger) { status in
            NodeRecord(kind: .daemon, service: "daemon", region: region, address: adminAddress.withLock { $0 } ?? "-", status: status,
                       stats: ["programs": Int64(daemon.supervisors.count)])
        }
        let adminServer = AdminServer(
            host: self.admin.host, port: self.admin.port, token: token, endpoints: AdminEndpoints(counters: counters), logger: logger,
            onServerRunning: { bound in
                adminAddress.withLock { $0 = bound }
                await presence.rewrite()
            }
        )
        Output.line("daemon running \(daemon.supervisors.count) programs from \(self.file)")
        let group = ServiceGroup(
            configuration: .sky(
                services: [
                    presence, LogLevelSignals(logger: logger), adminServer, daemon,
                    ProgramCommands(daemon: daemon, registry: registry, daemonNodeID: nodeID, logger: logger),
                ],
                logger: logger
            )
        )
        try await group.run()
    }
}
