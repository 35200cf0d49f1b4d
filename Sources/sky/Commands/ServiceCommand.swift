import ArgumentParser
import Foundation
import NodeRuntime
import RegistryKit
import ServiceLifecycle
import Services
import SkyLib

/// `sky service NAME`: hosts one built-in service as its own process.
struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Host one built-in service: serve POST /call, register, heartbeat, drain on SIGTERM.",
        discussion: "Built-in services: \(BuiltinServices.names.joined(separator: ", "))."
    )

    @Argument(help: "The service to host.")
    var name: String

    @OptionGroup var common: CommonOptions

    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 0)

    @Option(help: "Port to listen on (shorthand for --http 127.0.0.1:PORT).")
    var port: Int?

    @Option(help: "Version to register.")
    var version: String = "1.0.0"

    @Option(help: "Seconds without a heartbeat after which the reaper removes this node.")
    var ttl: Double = 3

    @Option(help: "Seconds between heartbeats.")
    var heartbeat: Double = 1

    func validate() throws {
        guard BuiltinServices.names.contains(self.name) else {
            throw ValidationError("unknown service '\(self.name)' (built-in: \(BuiltinServices.names.joined(separator: ", ")))")
        }
        guard self.ttl > self.heartbeat, self.heartbeat > 0 else {
            throw ValidationError("--ttl (\(self.ttl)s) must be longer than --heartbeat (\(self.heartbeat)s), or live nodes get reaped")
        }
    }

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
