import ArgumentParser
import Foundation
import Shell
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime

/// `sky cli`: an interactive shell over the same commands, with a persistent filter,
/// history and completion from the registry.
struct CLICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cli",
        abstract: "An interactive shell: the query and admin commands, a filter kept between commands, history and Tab completion.",
        discussion: """
            Type help for the commands. `filter service=uppercase region=eu` applies to every \
            later command until changed (`filter clear` removes it); `key=value` on one command \
            overrides it for that command. Tab completes commands, keys, and the services, \
            versions, regions and hosts the registry knows. History is kept in $SKYNET_HISTORY \
            (default ~/.sky_history). Ctrl-D or exit leaves. Lines can also come from a pipe.
            """
    )

    /// The registry the shell's commands use; set in the environment for them, since the commands
    /// resolve it as on the command line.
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    /// Reads lines until Ctrl-D or `exit`: each is the shell's own command (filter, help, events)
    /// or a `sky` command run in this process with the filter applied. The completion vocabulary is
    /// read from the registry again before each line, so a service that just registered completes.
    func run() async throws {
        // The shell runs the commands in this process; they read the registry from the environment.
        if let registry { setenv("SKYNET_REGISTRY", try RegistryAddress.resolve(flag: registry).uri, 1) }
        let registry = try await RegistryAddress.resolve(flag: nil).open()
        let environment = ProcessInfo.processInfo.environment
        let history = environment["SKYNET_HISTORY"] ?? environment["HOME"].map { $0 + "/.sky_history" }
        let editor = LineEditor(historyFile: history)
        var session = ShellSession()
        if editor.isInteractive {
            Output.line("sky cli on \(registry.displayName): help lists the commands, Tab completes, Ctrl-D leaves.")
        }
        while true {
            editor.setCompleter(ShellCompleter(vocabulary: await Self.vocabulary(registry)))
            guard let line = editor.readLine(prompt: session.prompt) else { break }
            switch session.handle(line) {
            case .nothing:
                continue
            case .exit:
                return
            case .say(let text):
                Output.line(text)
            case .events(let count):
                await Self.printEvents(registry, count: count)
            case .run(let arguments, let preface):
                if let preface { Output.line(preface) }
                await Self.runSky(arguments)
            }
        }
        if editor.isInteractive { Output.line("") }
    }

    /// Runs one `sky` command in this process, as the command line would; its failure is
    /// reported and the shell goes on.
    static func runSky(_ arguments: [String]) async {
        do {
            var command = try Sky.parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            _ = exit  // the command has said why
        } catch {
            Output.line(Sky.fullMessage(for: error))
        }
    }

    /// Values per filter key, for completion.
    static func vocabulary(_ registry: any Registry) async -> [String: [String]] {
        guard let nodes = try? await registry.nodes() else { return [:] }
        /// The distinct values of one field, sorted, so Tab lists them in a stable order.
        func values(_ path: KeyPath<NodeRecord, String>) -> [String] { Set(nodes.map { $0[keyPath: path] }).sorted() }
        return [
            "service": values(\.service), "version": values(\.version), "region": values(\.region), "host": values(\.host),
            "kind": NodeKind.allCases.map(\.rawValue),
        ]
    }

    /// The newest registry events as a table, oldest at the top (as a log reads).
    static func printEvents(_ registry: any Registry, count: Int) async {
        do {
            let formatter = ISO8601DateFormatter()
            let rows = try await registry.events(limit: count).reversed().map { event in
                [formatter.string(from: event.at), event.kind, event.service, Identifiers.short(event.nodeID), event.message]
            }
            Output.line(Table.render(header: ["AT", "KIND", "SERVICE", "NODE", "MESSAGE"], rows: Array(rows)))
        } catch {
            Output.line("cannot read events: \(error)")
        }
    }
}
