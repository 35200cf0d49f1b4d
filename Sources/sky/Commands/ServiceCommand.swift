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
        var configuration = ServiceHost.Configuration()
        configuration.host = address.host
        configuration.port = address.port
        configuration.region = context.region
        configuration.environment = context.environment
        configuration.ttl = self.ttl
        configuration.heartbeatInterval = .milliseconds(Int64(self.heartbeat * 1000))
        configuration.token = context.token
        configuration.tls = context.tls
        configuration.commands = .process(context.lifecycle.nodeControl)
        let nodeID = Identifiers.nodeID()
        let spans = SpanRecorder(
            registry: context.registry, recorder: nodeID, host: ProcessInfo.processInfo.hostName, counters: context.counters,
            exporter: context.spanExporter, logger: context.logger
        )
        let host = ServiceHost(
            definition: definition, configuration: configuration, registry: context.registry, counters: context.counters, nodeID: nodeID,
            spans: spans, watchdog: context.watchdog, logger: context.logger
        )
        let announce = Announce {
            let address = try await host.waitUntilReady()
            Output.line("service \(definition.name) \(definition.version) ready at \(address) node \(host.nodeID)")
        }
        try await context.run([spans, host, announce])
    }
}

/// Prints a line once something is ready, then idles until shutdown (a service that returns
/// early would end the whole group).
struct Announce: Service {
    let body: @Sendable () async throws -> Void

    func run() async throws {
        try await self.body()
        try? await gracefulShutdown()
    }
}
