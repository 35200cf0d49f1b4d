import AdminHTTP
import ArgumentParser
import Foundation
import Initiators
import Logging
import Routing
import ServiceLifecycle
import SkyLib
import UnixSignals

/// `sky router`: a router with its HTTP initiator, calling services found in the registry.
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Run a router and its HTTP initiator; services are found in the registry."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Folder of route files (*.yaml), reloaded live; or 'registry' for the routes pushed with `sky routes push`.")
    var routes: String = "Routes"

    @Option(help: "HOST:PORT of the HTTP initiator.")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 8080)

    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: true)
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let token = try CommonOptions.token()
        HostPort.warnIfExposed(self.http, token: token, logger: logger)
        let registry = try await self.common.openRegistry()
        let counters = Counters()
        counters.bootstrapMetricsSystem()
        let stack = RouterStack(
            routes: self.routes, registry: registry, region: self.common.region, local: nil,
            counters: counters, token: token, logger: logger
        )
        await stack.loader.reloadNow()
        await stack.cache.refresh()

        var configuration = HTTPInitiator.Configuration()
        configuration.host = self.http.host
        configuration.port = self.http.port
        configuration.token = token
        let boundAddress = Locked<String?>(nil)
        let region = self.common.region
        let fallback = self.http.description
        let presence = NodePresence(registry: registry, nodeID: stack.nodeID, control: .process, logger: logger) { status in
            NodeRecord(kind: .router, service: "router", region: region, address: boundAddress.withLock { $0 } ?? fallback, status: status,
                       stats: ["routes": Int64(stack.table.summaries.count)])
        }
        let initiator = HTTPInitiator(
            configuration: configuration,
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
                Output.line("router ready at http://\(address) with \(stack.table.summaries.count) routes")
            }
        )
        let group = ServiceGroup(
            configuration: .sky(
                services: stack.services + [presence, LogLevelSignals(logger: logger), initiator],
                logger: logger
            )
        )
        try await group.run()
    }
}
