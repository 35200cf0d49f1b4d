import ArgumentParser
import AsyncHTTPClient
import Dashboard
import Foundation
import NodeRuntime
import RegistryKit
import Routing
import SkyLib
import RouteModel

/// `sky routes`: the routes kept in the registry; `sky routes push DIR` stores them there.
struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "List, push or check the routes kept in the registry (served by routers started with --routes registry).",
        subcommands: [List.self, Push.self, Status.self],
        defaultSubcommand: List.self
    )

    /// `sky routes list`: the routes pushed to the registry, with their revisions and when they
    /// changed.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the routes in the registry with revision and time.")

        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
        @Flag(help: "Print JSON instead of a table.") var json = false

        /// A table with each route's steps parsed from the stored YAML (`?` when it no longer
        /// parses, which a push would have refused, so it only happens after a downgrade).
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

    /// `sky routes push`: validates the files first (a route that does not parse is never stored,
    /// so no router can load it), then stores them; routers started with `--routes registry` apply
    /// the change within a poll.
    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Validate route files and store them in the registry; every router on --routes registry applies them within a second. A rejected push changes nothing."
        )

        @Argument(help: "Route files or folders.") var paths: [String]
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
        /// Off by default: pushing one file must not remove every other route; with it, the
        /// registry matches the folder exactly.
        @Flag(help: "Also remove stored routes that are not in the files pushed.") var prune = false
        /// A push is stored at once; with this, the command also waits for the routers to serve it.
        @Flag(help: "Return only once every router on --routes registry serves the pushed revisions; name those that do not, and why, and exit 1 after --timeout (and one last round of asking, at most 2 s).")
        var wait = false
        /// How long `--wait` waits; ten seconds is forty rounds of asking.
        @Option(help: "Seconds --wait waits for the routers.") var timeout: Double = 10
        /// The routers' listeners may serve TLS, and ask for a client certificate.
        @OptionGroup var tlsClient: TLSClientOptions

        /// A positive wait.
        func validate() throws {
            guard self.timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
        }

        /// All or nothing: any problem in any file rejects the whole push, so routers never see
        /// half of a change. Prints per route whether it was added, updated or unchanged.
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
            let removed = before.keys.sorted().filter { name in !after.contains(where: { $0.name == name }) }
            for name in removed { Output.line("removed  \(name)") }
            guard self.wait else { return }
            let pushed = Set(files.loaded.map(\.route.name)).union(removed)
            let confirmed = try await Status.waitForRouters(
                registry: registry, pushed: pushed, timeout: .milliseconds(Int64(self.timeout * 1000)),
                rollout: RouteRollout(client: HTTPClient.shared, tls: try self.tlsClient.nodeTLS(), token: try CommonOptions.token())
            )
            if !confirmed { throw ExitCode(1) }
        }
    }

    /// `sky routes status`: every router's revisions, against the registry's for routers on
    /// `--routes registry`, with each refused file and each router that does not answer named.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show which revision of each route every router serves; name routers behind the registry, refused route files (file:line) and routers that do not answer.",
            discussion: "Exits 1 when any router is not in step, so scripts can wait on it."
        )

        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
        /// For scripts: `{"routers": [...], "inStep", "registry": {route: revision}}`.
        @Flag(help: "Print JSON instead of a table.") var json = false
        /// The routers' listeners may serve TLS, and ask for a client certificate.
        @OptionGroup var tlsClient: TLSClientOptions

        /// A table of routers (or JSON), then exit 1 when one is not in step.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let rollout = RouteRollout(client: HTTPClient.shared, tls: try self.tlsClient.nodeTLS(), token: try CommonOptions.token())
            let (states, stored) = try await Self.gather(registry: registry, rollout: rollout, pushed: nil)
            if self.json {
                Output.line(JSONWriter.string([
                    "routers": .array(states.map(\.json)), "inStep": .bool(states.allSatisfy(\.inStep)),
                    "registry": .object(Dictionary(uniqueKeysWithValues: stored.map { ($0.name, JSONValue.int(Int64($0.revision))) })),
                ]))
            } else if states.isEmpty {
                Output.line("no router is ready in \(registry.displayName)")
            } else {
                Output.line(Table.render(header: ["ROUTER", "ADDRESS", "ROUTES FROM", "SERVING", "STATE"], rows: states.map(Self.row)))
            }
            if !states.allSatisfy(\.inStep) { throw ExitCode(1) }
        }

        /// One router's row: its revisions as `name@revision`.
        static func row(_ state: RouteRollout.RouterState) -> [String] {
            let serving = state.revisions.keys.sorted().map { "\($0)@\(state.revisions[$0] ?? 0)" }.joined(separator: " ")
            return [Identifiers.short(state.nodeID), state.address, state.source ?? "?", serving.isEmpty ? "-" : serving, state.state]
        }

        /// The ready routers' states, compared with the registry's routes (all of them, or only
        /// those `pushed`).
        static func gather(registry: any Registry, rollout: RouteRollout, pushed: Set<String>?) async throws -> ([RouteRollout.RouterState], [StoredRoute]) {
            let stored = try await registry.storedRoutes()
            var states = await rollout.states(of: try await RouteRollout.routers(in: registry))
            for index in states.indices { states[index].compare(with: stored, only: pushed) }
            return (states, stored)
        }

        /// Asks the routers every quarter second until each one on `--routes registry` serves
        /// `pushed` routes at the registry's revisions, or `timeout` passes; prints who confirmed,
        /// or who did not and why.
        ///
        /// The verdict against a router comes from a round of asking begun after the timeout (at
        /// most 2 s more): a round that began earlier may have waited that long on a router that
        /// does not answer, and what the others said at its start is no longer news.
        /// - Returns: whether every such router confirmed.
        static func waitForRouters(registry: any Registry, pushed: Set<String>, timeout: Duration, rollout: RouteRollout) async throws -> Bool {
            let started = ContinuousClock.now
            while true {
                let roundStarted = ContinuousClock.now
                let (states, _) = try await Self.gather(registry: registry, rollout: rollout, pushed: pushed)
                // Routers on a folder are not waited for (a push never reaches them), unless they
                // do not answer: then nobody can say what they serve.
                let waited = states.filter { $0.source == "registry" || $0.unreachable != nil }
                let behind = waited.filter { !$0.lagging.isEmpty || $0.unreachable != nil || $0.problems.contains { problem in pushed.contains(problem.route ?? "") } }
                if behind.isEmpty {
                    let count = waited.count
                    let elapsed = ContinuousClock.now - started
                    Output.line(
                        count == 0
                            ? "no ready router serves routes from the registry: nothing to wait for"
                            : "confirmed: \(count) router\(count == 1 ? " serves" : "s serve") the pushed revisions (after \(String(format: "%.2f", elapsed.seconds)) s)"
                    )
                    return true
                }
                if roundStarted - started >= timeout {
                    Output.line("not confirmed after \(String(format: "%.1f", timeout.seconds)) s: \(behind.count) of \(waited.count) routers do not serve the push")
                    for state in behind { Output.line("  \(state.address) (\(Identifiers.short(state.nodeID))): \(state.state)") }
                    return false
                }
                let untilTimeout = timeout - (ContinuousClock.now - started)
                try await Task.sleep(for: max(.zero, min(.milliseconds(250), untilTimeout)))
            }
        }
    }
}
