import ArgumentParser
import Foundation
import NodeRuntime
import RegistryKit
import ServiceLifecycle
import Services
import SkyLib
import RouteModel

/// `sky service NAME`: hosts one built-in service as its own process.
struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Host one built-in service: serve POST /call, register, heartbeat, drain on SIGTERM.",
        discussion: "Built-in services: \(BuiltinServices.names.joined(separator: ", "))."
    )

    /// One of ``BuiltinServices/names``; a service of your own is a program of its own (`sky
    /// generate service`), not a flag here.
    @Argument(help: "The service to host.")
    var name: String

    @OptionGroup var common: CommonOptions

    /// Port 0 by default: instances started side by side (a daemon's, a test's) each get a free
    /// port and register it.
    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 0)

    /// The original Skynet's flag, kept for scripts: the same as `--http 127.0.0.1:PORT`.
    @Option(help: "Port to listen on (shorthand for --http 127.0.0.1:PORT).")
    var port: Int?

    /// The version registered: routes may select instances by it (`version: "1.*"`).
    @Option(help: "Version to register.")
    var version: String = "1.0.0"

    /// Three seconds: a dead instance is reaped within two TTLs (about 6 s) while a live one,
    /// heartbeating every second, never misses three beats in a row by accident.
    @Option(help: "Seconds without a heartbeat after which the reaper removes this node.")
    var ttl: Double = 3

    /// Once a second: the registry's heaviest write, kept to one row per node.
    @Option(help: "Seconds between heartbeats.")
    var heartbeat: Double = 1

    /// A built-in service, and a TTL longer than the heartbeat (or live nodes would be reaped
    /// between beats).
    func validate() throws {
        guard BuiltinServices.names.contains(self.name) else {
            throw ValidationError("unknown service '\(self.name)' (built-in: \(BuiltinServices.names.joined(separator: ", ")))")
        }
        guard self.ttl > self.heartbeat, self.heartbeat > 0 else {
            throw ValidationError("--ttl (\(self.ttl)s) must be longer than --heartbeat (\(self.heartbeat)s), or live nodes get reaped")
        }
    }

    /// Runs a ``ServiceNode`` hosting the built-in service, and prints its address once it is
    /// registered and serving (`… ready at HOST:PORT node ID`, which scripts and tests wait for).
    func run() async throws {
        let context = try await self.common.context(serviceName: self.name)
        var address = self.http
        if let port { address.port = port }
        HostPort.warnIfExposed(address, token: context.token, logger: context.logger)
        guard let definition = BuiltinServices.definition(named: self.name, version: self.version, logger: context.logger) else { return }
        var configuration = ServiceNode.Configuration()
        configuration.listen = address.listenAddress
        configuration.ttl = self.ttl
        configuration.heartbeat = .milliseconds(Int64(self.heartbeat * 1000))
        let node = ServiceNode(definition: definition, configuration: configuration, context: context)
        try await node.run { address in
            Output.line("service \(definition.name) \(definition.version) ready at \(address) node \(node.host.nodeID)")
        }
    }
}
