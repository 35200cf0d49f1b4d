import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import NodeRuntime

/// `sky`: runs every role of a Skynet cluster and inspects it.
@main
struct Sky: AsyncParsableCommand {
    /// Subcommands in the order `sky help` lists them: the roles a cluster runs, then the commands
    /// that read it, then those that act on it, then the tools.
    static let configuration = CommandConfiguration(
        commandName: "sky",
        abstract: "Skynet: initiators, routers and services on one registry.",
        discussion: """
            Start everything in one process with `sky run`, or one role per process with
            `sky router`, `sky service NAME` and `sky reaper` for real deployments.
            The registry is sqlite:.skynet/registry.sqlite unless --registry or SKYNET_REGISTRY says otherwise.
            """,
        version: "0.1.0",
        subcommands: [
            RunCommand.self, RouterCommand.self, ServiceCommand.self, InitiatorCommand.self, ReaperCommand.self, DNSCommand.self, CertsCommand.self,
            RouteCommand.self, RoutesCommand.self, FailedCommand.self, NodesCommand.self, ServicesCommand.self, StatsCommand.self, ProgressCommand.self, TraceCommand.self, DashboardCommand.self, DaemonCommand.self,
            StopCommand.self, RestartCommand.self, RegisterCommand.self, UnregisterCommand.self, DeployCommand.self, CLICommand.self, GenerateCommand.self, DrillCommand.self,
        ]
    )

    /// Parses the command line and runs the command, as `AsyncParsableCommand.main()` would, but
    /// with our own error exit: a failure prints ArgumentParser's message (usage for a bad flag,
    /// the error otherwise) and the exit code the command chose (`ExitCode(1)` when it already said
    /// why).
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// What `sky` prints for people (tables, summaries), written straight to standard output so it
/// reaches pipes (supervisors, tests) at once. Logs go to standard error through swift-log.
enum Output {
    /// Prints `text` and flushes at once (a supervisor or a test reads the line while the process
    /// runs on).
    static func line(_ text: String, terminator: String = "\n") {
        FileHandle.standardOutput.write(Data((text + terminator).utf8))
    }
}
