import AdminHTTP
import ArgumentParser
import Foundation
import Logging
import Reaper
import ServiceLifecycle
import SkyLib
import UnixSignals

/// `sky reaper`: removes dead nodes from the registry.
struct ReaperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reaper",
        abstract: "Remove nodes whose heartbeat is older than their TTL, and record why."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "HOST:PORT of the admin endpoints (/health, /debug/vars, /metrics); port 0 picks a free one.")
    var admin: HostPort = HostPort(host: "127.0.0.1", port: 0)

    @Option(help: "Seconds between passes.")
    var interval: Double = 0.5

    @Option(help: "Seconds the active reaper's lease lasts; a standby reaper takes over within this and one --interval after the active one dies.")
    var lease: Double = 3

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let registry = try await self.common.openRegistry()
        var configuration = Reaper.Configuration()
        configuration.interval = .milliseconds(Int64(self.interval * 1000))
        configuration.leaseDuration = self.lease
        let counters = Counters()
        counters.bootstrapMetricsSystem()
        let reaper = Reaper(registry: registry, configuration: configuration, counters: counters, logger: logger)
        let token = try CommonOptions.token()
        HostPort.warnIfExposed(self.admin, token: token, logger: logger)
        let adminAddress = Locked<String?>(nil)
        let region = self.common.region
        let presence = NodePresence(registry: registry, control: .process, logger: logger) { status in
            NodeRecord(kind: .reaper, service: "reaper", region: region, address: adminAddress.withLock { $0 } ?? "-", status: status)
        }
        let adminServer = AdminServer(
            host: self.admin.host, port: self.admin.port, token: token, endpoints: AdminEndpoints(counters: counters), logger: logger,
            onServerRunning: { address in
                adminAddress.withLock { $0 = address }
                await presence.rewrite()
            }
        )
        Output.line("reaper watching \(registry.displayName)")
        let group = ServiceGroup(
            configuration: .sky(
                services: [presence, LogLevelSignals(logger: logger), reaper, adminServer],
                logger: logger
            )
        )
        try await group.run()
    }
}
