import ArgumentParser
import Foundation
import SkyLib
import NodeRuntime

/// `sky`: runs every role of a Skynet cluster and inspects it.
@main
struct Sky: AsyncParsableCommand {
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
            RouteCommand.self, RoutesCommand.self, NodesCommand.self, ServicesCommand.self, StatsCommand.self, ProgressCommand.self, TraceCommand.self, DashboardCommand.self, DaemonCommand.self,
            StopCommand.self, RestartCommand.self, RegisterCommand.self, UnregisterCommand.self, DeployCommand.self, CLICommand.self, GenerateCommand.self,
        ]
    )

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
    static func line(_ text: String, terminator: String = "\n") {
        FileHandle.standardOutput.write(Data((text + terminator).utf8))
    }
}
