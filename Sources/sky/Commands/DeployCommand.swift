import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime

/// `sky deploy SERVICE --host H`: asks that host's daemon to start instances of a service.
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Ask the daemon of a host to start more instances of a service, and wait until they are registered.",
        discussion: """
            The daemon (`sky daemon` on that host) starts the service as its file describes it, \
            or as a built-in service (`sky service NAME`) when the file does not name it, and \
            supervises the new instances like the others. Without --host, the only daemon in \
            the registry is used.
            """
    )

    @Argument(help: "The service to start.") var service: String
    @Option(help: "The host whose daemon starts it.") var host: String?
    @Option(help: "How many instances to start.") var instances: Int = 1
    @Flag(name: .customLong("dry-run"), help: "Say which daemon would be asked, and ask none.") var dryRun = false
    @Option(help: "Seconds to wait for the daemon and for the new instances to register.") var timeout: Double = 30
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    /// A service name that could name a route's step, and a positive timeout.
    func validate() throws {
        guard (1...64).contains(self.instances) else { throw ValidationError("--instances must be 1 to 64") }
        guard RouteParser.isValidName(self.service) else { throw ValidationError("service name '\(self.service)' may only use letters, digits, '-', '_' and '.'") }
        guard self.timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    /// Finds the daemon (the one on `--host`, or the only host with daemons), sends it a `deploy`
    /// command through the registry, waits for its acknowledgement, then for the new instances to
    /// register as ready: the command is done when they serve, not when they were started. Exits 1
    /// when fewer registered in time, naming where to look.
    func run() async throws {
        let registry = try await RegistryAddress.resolve(flag: self.registry).open()
        let daemons = try await registry.nodes(matching: NodeQuery(kind: .daemon, host: self.host))
        guard let daemon = daemons.max(by: { $0.heartbeatAt < $1.heartbeatAt }) else {
            let all = try await registry.nodes(matching: NodeQuery(kind: .daemon)).map(\.host)
            Output.line("no daemon runs on \(self.host.map { "host \($0)" } ?? "any host") (daemons on: \(all.isEmpty ? "none" : Set(all).sorted().joined(separator: ", ")))")
            throw ExitCode(1)
        }
        guard self.host != nil || Set(daemons.map(\.host)).count == 1 else {
            Output.line("daemons run on several hosts (\(Set(daemons.map(\.host)).sorted().joined(separator: ", "))); say which with --host")
            throw ExitCode(2)
        }
        let target = "daemon \(Identifiers.short(daemon.id)) on \(daemon.host)"
        if self.dryRun {
            Output.line("would ask \(target) to start \(self.instances) instance\(self.instances == 1 ? "" : "s") of \(self.service); nothing was sent")
            return
        }
        let before = Set(try await registry.nodes(matching: NodeQuery(kind: .service, service: self.service, host: daemon.host)).map(\.id))
        let issuer = CommandIssuer(registry: registry, issuedBy: CommandIssuer.describeIssuer(verb: "deploy"))
        let started = ContinuousClock.now
        let timeout = Duration.milliseconds(Int64(self.timeout * 1000))
        let commands = try await issuer.send(.deploy, to: [daemon], arguments: ["service": self.service, "instances": "\(self.instances)"], expiresIn: self.timeout)
        Output.line("deploy: asked \(target) for \(self.instances) instance\(self.instances == 1 ? "" : "s") of \(self.service)")
        let outcomes = try await issuer.awaitOutcomes(of: commands, timeout: timeout)
        guard let outcome = outcomes.first, outcome.state == .done else {
            if let outcome = outcomes.first { Output.line(NodeAction.line(outcome, node: daemon)) }
            throw ExitCode(1)
        }
        Output.line("  \(target): \(outcome.result)")
        // The daemon has started them; they count once registered and ready.
        var fresh: [NodeRecord] = []
        while ContinuousClock.now - started < timeout {
            fresh = try await registry.nodes(matching: NodeQuery(kind: .service, service: self.service, host: daemon.host, status: .ready))
                .filter { !before.contains($0.id) }
            if fresh.count >= self.instances { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for node in fresh { Output.line("  ready  \(node.service) \(node.version) at \(node.address) (node \(Identifiers.short(node.id)))") }
        if fresh.count < self.instances {
            Output.line("  only \(fresh.count) of \(self.instances) registered within \(Int(self.timeout)) s; see `sky nodes --host \(daemon.host)` and the daemon's log")
            throw ExitCode(1)
        }
    }
}
