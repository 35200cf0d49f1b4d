import AdminHTTP
import ArgumentParser
import Foundation
import Logging
import Routing
import ServiceLifecycle
import SkyLib
import UnixSignals

/// `sky initiator`: the initiators routes declare (`from:`), with a router of their own.
struct InitiatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initiator",
        abstract: "Run the initiators the routes declare under from: (files, CSV, STOMP), with their own router; services are found in the registry."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "HOST:PORT of the admin endpoints (/health, /debug/vars, /metrics); port 0 picks a free one.")
    var admin: HostPort = HostPort(host: "127.0.0.1", port: 0)

    @Option(help: "Folder of route files (*.yaml), reloaded live; or 'registry' for the routes pushed with `sky routes push`.")
    var routes: String = "Routes"

    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: true)
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let token = try CommonOptions.token()
        let registry = try await self.common.openRegistry()
        let counters = Counters()
        counters.bootstrapMetricsSystem()
        let stack = RouterStack(routes: self.routes, registry: registry, region: self.common.region, local: nil, counters: counters, token: token, logger: logger)
        await stack.loader.reloadNow()
        await stack.cache.refresh()
        let supervisor = InitiatorSupervisor(
            table: stack.table,
            makeInitiator: InitiatorSupervisor.factory(runner: stack.executor, counters: counters, logger: logger),
            logger: logger
        )
        HostPort.warnIfExposed(self.admin, token: token, logger: logger)
        let adminAddress = Locked<String?>(nil)
        let region = self.common.region
        let presence = NodePresence(registry: registry, nodeID: stack.nodeID, control: .process, logger: logger) { status in
            NodeRecord(kind: .initiator, service: "initiator", region: region, address: adminAddress.withLock { $0 } ?? "-", status: status,
                       stats: ["routes": Int64(stack.table.summaries.count)])
        }
        let adminServer = AdminServer(
            host: self.admin.host, port: self.admin.port, token: token, endpoints: AdminEndpoints(counters: counters), logger: logger,
            onServerRunning: { address in
                adminAddress.withLock { $0 = address }
                await presence.rewrite()
            }
        )
        Output.line("initiator running with \(stack.table.summaries.count) routes from \(self.routes)")
        let group = ServiceGroup(
            configuration: .sky(
                services: stack.services + [presence, LogLevelSignals(logger: logger), supervisor, adminServer],
                logger: logger
            )
        )
        try await group.run()
    }
}
