import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime

/// Which nodes a remote command goes to, and how to wait for it: shared by `sky stop`,
/// `sky restart`, `sky register` and `sky unregister`.
struct NodeActionOptions: ParsableArguments {
    /// `--service`, `--version`, `--region`, `--host`, `--kind`: the same filters as `sky nodes`,
    /// so a command can be tried as a listing first.
    @OptionGroup var filter: NodeFilterOptions
    @Option(help: "Only the node with this id (a prefix of one, or the short id sky nodes shows).") var id: String?
    @Flag(help: "Every node, when no filter is given (without it, no filter is refused).") var all = false
    @Flag(name: .customLong("dry-run"), help: "List the nodes that would be touched, and touch none.") var dryRun = false
    /// 30 s: longer than a node's default drain (20 s), so a stop that drains in full is reported
    /// as done, not unanswered.
    @Option(help: "Seconds to wait for the nodes to act and acknowledge.") var timeout: Double = 30
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    /// A positive timeout. The filter-or-`--all` rule is checked when the command runs, where it
    /// can print which filters exist: a bare `sky stop` would stop the whole cluster.
    func validate() throws {
        guard self.timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    /// The registry query for the filter; `--id` is matched afterwards, since a short id is a
    /// prefix the registry cannot index.
    var query: NodeQuery { self.filter.query }

    /// The filter as a person wrote it: `service=uppercase host=h1`.
    var description: String {
        self.parts.isEmpty ? "all nodes" : self.parts.joined(separator: " ")
    }

    /// Whether any filter was given; without one (and without `--all`) the command refuses, rather
    /// than touching every node.
    var hasFilter: Bool { !self.parts.isEmpty }

    /// The filters in a fixed order, so the same command prints the same description in logs and
    /// events.
    private var parts: [String] {
        var parts: [String] = []
        if let kind = self.filter.kind { parts.append("kind=\(kind.rawValue)") }
        if let service = self.filter.service { parts.append("service=\(service)") }
        if let version = self.filter.version { parts.append("version=\(version)") }
        if let region = self.filter.region { parts.append("region=\(region)") }
        if let host = self.filter.host { parts.append("host=\(host)") }
        if let id { parts.append("id=\(id)") }
        return parts
    }
}

/// Runs one remote action over the nodes the options match, and reports each outcome.
enum NodeAction {
    /// Finds the nodes, refuses an `--id` that matches several (time-ordered ids start alike for
    /// nodes started together), then sends one command per node through the registry and prints
    /// each outcome as the node reports it; exits 1 when a node did not act in time or refused.
    static func run(_ action: NodeCommand.Action, options: NodeActionOptions) async throws {
        guard options.hasFilter || options.all else {
            Output.line("\(action.rawValue): give a filter (--service, --version, --region, --host, --kind, --id), or --all for every node")
            throw ExitCode(2)
        }
        let registry = try await RegistryAddress.resolve(flag: options.registry).open()
        let everything = try await registry.nodes()
        let nodes = everything.filter { node in options.query.matches(node) && (options.id.map { Identifiers.matches(node.id, typed: $0) } ?? true) }
        guard !nodes.isEmpty else {
            let hosts = Set(everything.map(\.host)).sorted().joined(separator: ", ")
            let services = Set(everything.map(\.service)).sorted().joined(separator: ", ")
            Output.line("no node matches \(options.description) (\(everything.count) nodes in \(registry.displayName); services: \(services.isEmpty ? "none" : services); hosts: \(hosts.isEmpty ? "none" : hosts))")
            throw ExitCode(1)
        }
        // `--id` names one node. Time-ordered ids share their first characters (the clock)
        // between nodes started together, so a prefix can match several: refuse rather than
        // act on all of them.
        if let id = options.id, nodes.count > 1 {
            Output.line("id '\(id)' matches \(nodes.count) nodes; give the short id sky nodes shows (the last 8 characters) or the whole id:")
            Output.line(Table.render(header: NodeTable.header, rows: nodes.map(NodeTable.row)))
            throw ExitCode(1)
        }
        if options.dryRun {
            Output.line("would \(action.rawValue) \(nodes.count) node\(nodes.count == 1 ? "" : "s") (\(options.description)); nothing was sent:")
            Output.line(Table.render(header: NodeTable.header, rows: nodes.map(NodeTable.row)))
            return
        }
        let issuer = CommandIssuer(registry: registry, issuedBy: CommandIssuer.describeIssuer(verb: action.rawValue))
        let commands = try await issuer.send(action, to: nodes, expiresIn: options.timeout)
        if !options.filter.json {
            Output.line("\(action.rawValue): sent to \(nodes.count) node\(nodes.count == 1 ? "" : "s") (\(options.description)); waiting up to \(Int(options.timeout)) s")
        }
        let byID = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0) })
        let outcomes = try await issuer.awaitOutcomes(of: commands, timeout: .milliseconds(Int64(options.timeout * 1000))) { command in
            guard !options.filter.json, let node = byID[command.target] else { return }
            Output.line(Self.line(command, node: node))
        }
        if options.filter.json {
            Output.line(JSONWriter.string(.array(outcomes.map(\.json))))
        } else {
            for command in outcomes where !command.state.isFinal {
                if let node = byID[command.target] { Output.line(Self.line(command, node: node)) }
            }
        }
        if outcomes.contains(where: { $0.state != .done }) { throw ExitCode(1) }
    }

    /// One outcome: `done  uppercase 1.0.0 at 127.0.0.1:4001 (node 1a2b3c4d): drained and …`.
    static func line(_ command: NodeCommand, node: NodeRecord) -> String {
        let what = "\(node.kind == .service ? "" : node.kind.rawValue + " ")\(node.service) \(node.version) at \(node.address) (node \(Identifiers.short(node.id)))"
        switch command.state {
        case .done: return "  \(command.action.pastTense)  \(what): \(command.result)"
        case .failed: return "  FAILED  \(what): \(command.result)"
        case .expired:
            return "  NO ANSWER  \(what): \(command.result); a node acts on commands only if it is a sky process or a generated Python service, or has a daemon (see `sky help \(command.action.rawValue)`)"
        case .acknowledged: return "  UNFINISHED  \(what): acknowledged by \(Identifiers.short(command.actor)) but not finished in time"
        case .pending: return "  PENDING  \(what)"
        }
    }
}

/// Columns for listing nodes (`sky nodes`, `--dry-run`).
enum NodeTable {
    /// The columns of `sky nodes`.
    static let header = ["ID", "KIND", "SERVICE", "VERSION", "REGION", "ENVIRONMENT", "HOST", "ADDRESS", "STATUS", "HEARTBEAT"]

    /// One node's row; its status as routers see it now (`expired` past its TTL), not only as it
    /// was written.
    static func row(_ node: NodeRecord) -> [String] {
        [Identifiers.short(node.id), node.kind.rawValue, node.service, node.version, node.region, node.environment, node.host, node.address,
         node.shownStatus(), String(format: "%.1fs", Date().timeIntervalSince(node.heartbeatAt))]
    }
}

private let commandsDiscussion = """
    The command travels through the registry: each matching node claims it on its next \
    heartbeat (exactly one claimer acts), does it, and acknowledges with an event \
    (`command-acknowledged`, then `command-done` or `command-failed`). A program run by \
    `sky daemon` is stopped and restarted by its daemon. A node that is neither a sky \
    process nor a generated Python service, has no daemon, and does not take commands itself \
    (docs/PROTOCOL.md) cannot act; the command then expires after --timeout and is reported \
    as unanswered.
    """

/// `sky stop`: drain and stop matching nodes.
struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop the matching nodes: each drains its in-flight work, deregisters and exits (a daemon's program stays stopped).",
        discussion: commandsDiscussion
    )
    @OptionGroup var options: NodeActionOptions
    func run() async throws { try await NodeAction.run(.stop, options: self.options) }
}

/// `sky restart`: drain and start matching nodes again.
struct RestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Restart the matching nodes: each drains, deregisters and starts again as a new node.",
        discussion: commandsDiscussion
    )
    @OptionGroup var options: NodeActionOptions
    func run() async throws { try await NodeAction.run(.restart, options: self.options) }
}

/// `sky unregister`: keep matching nodes running but out of rotation.
struct UnregisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unregister",
        abstract: "Take the matching nodes out of rotation: they keep running and heartbeating, but routers stop choosing them.",
        discussion: commandsDiscussion
    )
    @OptionGroup var options: NodeActionOptions
    func run() async throws { try await NodeAction.run(.unregister, options: self.options) }
}

/// `sky register`: put unregistered nodes back in rotation.
struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Put the matching nodes back in rotation after `sky unregister`.",
        discussion: commandsDiscussion
    )
    @OptionGroup var options: NodeActionOptions
    func run() async throws { try await NodeAction.run(.register, options: self.options) }
}
