import AdminHTTP
import ArgumentParser
import Foundation
import Initiators
import Logging
import Reaper
import Routing
import ServiceLifecycle
import Services
import SkyLib
import UnixSignals

/// `sky run`: the whole engine in one process on the embedded registry.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run everything in one process: built-in services, a router with the routes folder, the HTTP initiator, the drop-folder initiators routes declare, a reaper."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Folder of route files (*.yaml), reloaded live.")
    var routes: String = "Routes"

    @Option(help: "HOST:PORT of the HTTP initiator.")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 8080)

    @Option(help: "Built-in services to host, comma-separated (default: all).")
    var services: String = BuiltinServices.names.joined(separator: ",")

    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: false)
        for name in self.serviceNames where !BuiltinServices.names.contains(name) {
            throw ValidationError("unknown built-in service '\(name)' (built-in: \(BuiltinServices.names.joined(separator: ", ")))")
        }
    }

    var serviceNames: [String] {
        self.services.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let token = try CommonOptions.token()
        HostPort.warnIfExposed(self.http, token: token, logger: logger)
        let registry = try await self.common.openRegistry()
        let counters = Counters()
        counters.bootstrapMetricsSystem()

        var hostConfiguration = ServiceHost.Configuration()
        hostConfiguration.region = self.common.region
        hostConfiguration.token = token
        // `sky stop` of one built-in service stops that host only; the whole process stops
        // with its router node.
        hostConfiguration.commands = .embedded(in: "`sky run` pid \(ProcessInfo.processInfo.processIdentifier)")
        let hosts = self.serviceNames.compactMap { name in
            BuiltinServices.definition(named: name, logger: logger).map {
                ServiceHost(definition: $0, configuration: hostConfiguration, registry: registry, counters: counters, logger: logger)
            }
        }
        let local = LocalServices(handlers: Dictionary(uniqueKeysWithValues: hosts.map { ($0.nodeID, $0.inProcessHandler) }))
        let stack = RouterStack(
            routes: self.routes, registry: registry, region: self.common.region, local: local,
            counters: counters, token: token, logger: logger
        )
        await stack.loader.reloadNow()

        var initiatorConfiguration = HTTPInitiator.Configuration()
        initiatorConfiguration.host = self.http.host
        initiatorConfiguration.port = self.http.port
        initiatorConfiguration.token = token
        let routesDirectory = self.routes
        let registryName = registry.displayName
        let boundAddress = Locked<String?>(nil)
        let region = self.common.region
        let fallback = self.http.description
        let presence = NodePresence(registry: registry, nodeID: stack.nodeID, control: .process, logger: logger) { status in
            NodeRecord(kind: .router, service: "router", region: region, address: boundAddress.withLock { $0 } ?? fallback, status: status,
                       stats: ["routes": Int64(stack.table.summaries.count)])
        }
        let initiator = HTTPInitiator(
            configuration: initiatorConfiguration,
            runner: stack.executor,
            admin: AdminEndpoints(
                counters: counters,
                extraVars: { ["asyncInFlight": .int(Int64(stack.asyncSteps.count))] },
                stats: { stack.executor.stats() }
            ),
            logger: logger,
            onServerRunning: { address in
                boundAddress.withLock { $0 = address }
                // Asked for port 0, the record said :0 until now: write the real address.
                if address != fallback { await presence.rewrite() }
                Output.line(StartupSummary.text(
                    address: address, routes: stack.table.summaries, routesDirectory: routesDirectory,
                    services: hosts.map { ($0.definition.name, $0.address ?? "?") }, registry: registryName
                ))
            }
        )
        // Initiators start once the local services are registered and in the router's cache.
        let ready: @Sendable () async throws -> Void = {
            for host in hosts { _ = try await host.waitUntilReady() }
            await stack.cache.refresh()
        }
        let supervisor = InitiatorSupervisor(
            table: stack.table,
            makeInitiator: InitiatorSupervisor.factory(runner: stack.executor, counters: counters, logger: logger),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .sky(
                services: stack.services + [Concurrently(services: hosts)]
                    + [Reaper(registry: registry, counters: counters, logger: logger), presence, LogLevelSignals(logger: logger),
                       AfterReady(prepare: ready, service: supervisor), AfterReady(prepare: ready, service: initiator)],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// The one screen `sky run` prints when it is ready.
enum StartupSummary {
    static func describe(_ source: RouteSource, route: String) -> String {
        switch source {
        case .files(let files): "files \(files.dir)/\(files.pattern) → \(route)"
        case .csv(let csv): "csv \(csv.dir)/\(csv.pattern) → \(route)"
        case .stomp(let stomp): "stomp \(stomp.destination) → \(route)"
        }
    }

    static func text(address: String, routes: [RouteSummary], routesDirectory: String, services: [(String, String)], registry: String) -> String {
        var lines = ["", "Skynet is running.", ""]
        lines.append("  HTTP       http://\(address)   (GET /routes, /health, /debug/vars)")
        lines.append("  registry   \(registry)")
        lines.append("  services   \(services.map { "\($0.0)@\($0.1)" }.joined(separator: " "))")
        lines.append("  routes     \(routes.count) from \(routesDirectory)/ (edit a file: it reloads within a second)")
        for summary in routes {
            let steps = summary.route.steps.map { $0.isAsync ? "\($0.service) (async)" : $0.service }.joined(separator: " → ")
            lines.append("             POST /routes/\(summary.route.name): \(steps)")
        }
        let initiators = routes.flatMap { summary in summary.route.sources.map { StartupSummary.describe($0, route: summary.route.name) } }
        if !initiators.isEmpty {
            lines.append("  initiators \(initiators.joined(separator: "; "))")
        }

        lines.append("")
        if routes.contains(where: { $0.route.name == "text" }) {
            lines.append("  Try:  curl -s -X POST http://\(address)/routes/text -H 'Content-Type: application/json' -d '{\"text\":\"hello big world\"}'")
        } else if let first = routes.first {
            lines.append("  Try:  curl -s -X POST http://\(address)/routes/\(first.route.name) -H 'Content-Type: application/json' -d '{}'")
        }
        if let files = routes.lazy.flatMap({ summary in summary.route.sources.compactMap { source -> String? in
            if case .files(let files) = source { return files.dir }
            return nil
        } }).first {
            lines.append("        echo '{\"text\":\"from a file\"}' > \(files)/hello.json   (answer in \(files)/.out/)")
        }
        lines.append("  Stop: Ctrl-C (drains in-flight requests first)")
        lines.append("")
        return lines.joined(separator: "\n")
    }
}
