import ArgumentParser
import Foundation
import Initiators
import NodeRuntime
import RegistryKit
import Routing
import SkyLib

/// `sky route check FILE...`: validates route files without running anything.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Work with route files.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate route files (or folders of them); print FILE:LINE:COLUMN: reason for each problem and exit 1 if any."
        )

        @Argument(help: "Route files or folders.")
        var paths: [String]

        func run() async throws {
            let files = RouteFiles(paths: self.paths)
            for loaded in files.loaded {
                Output.line("ok  \(loaded.file): route '\(loaded.route.name)': \(RouteFiles.describe(loaded.route))")
                for case .stomp(let stomp) in loaded.route.sources where stomp.deadLetter == nil {
                    Output.line("note \(loaded.file): stomp \(stomp.destination): \(StompInitiator.nackWarning)")
                }
            }
            for problem in files.problems { Output.line(problem) }
            if !files.problems.isEmpty { throw ExitCode(1) }
        }
    }
}

/// `sky routes`: the routes kept in the registry; `sky routes push DIR` stores them there.
struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "List or push the routes kept in the registry (served by routers started with --routes registry).",
        subcommands: [List.self, Push.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the routes in the registry with revision and time.")

        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let routes = try await RegistryAddress.resolve(flag: self.registry).open().storedRoutes()
            if self.json {
                Output.line(JSONWriter.string(.array(routes.map {
                    ["name": .string($0.name), "revision": .int(Int64($0.revision)), "file": .string($0.file),
                     "updatedAt": .double($0.updatedAt.timeIntervalSince1970), "yaml": .string($0.yaml)]
                })))
                return
            }
            let formatter = ISO8601DateFormatter()
            let rows = routes.map { stored in
                let steps = (try? RouteParser.parse(yaml: stored.yaml, file: stored.file)).map(RouteFiles.describe) ?? "?"
                return [stored.name, "\(stored.revision)", formatter.string(from: stored.updatedAt), stored.file, steps]
            }
            Output.line(Table.render(header: ["ROUTE", "REVISION", "UPDATED", "FILE", "STEPS"], rows: rows))
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Validate route files and store them in the registry; every router on --routes registry applies them within a second. A rejected push changes nothing."
        )

        @Argument(help: "Route files or folders.") var paths: [String]
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
        @Flag(help: "Also remove stored routes that are not in the files pushed.") var prune = false

        func run() async throws {
            let files = RouteFiles(paths: self.paths)
            guard files.problems.isEmpty else {
                for problem in files.problems { Output.line(problem) }
                Output.line("push rejected: nothing was changed")
                throw ExitCode(1)
            }
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let before = Dictionary(try await registry.storedRoutes().map { ($0.name, $0.revision) }, uniquingKeysWith: { first, _ in first })
            let after = try await registry.storeRoutes(
                files.loaded.map { StoredRoute(name: $0.route.name, yaml: $0.yaml, file: $0.file) }, prune: self.prune
            )
            for stored in after {
                let change = before[stored.name] == nil ? "added" : (before[stored.name] == stored.revision ? "unchanged" : "updated")
                Output.line("\(change)  \(stored.name) revision \(stored.revision) (\(stored.file))")
            }
            for name in before.keys.sorted() where !after.contains(where: { $0.name == name }) {
                Output.line("removed  \(name)")
            }
        }
    }
}
