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

    @Option(help: "Seconds between passes.")
    var interval: Double = 0.5

    @Option(help: "Seconds the active reaper's lease lasts; a standby reaper takes over this long after the active one dies.")
    var lease: Double = 3

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let registry = try await self.common.openRegistry()
        var configuration = Reaper.Configuration()
        configuration.interval = .milliseconds(Int64(self.interval * 1000))
        configuration.leaseDuration = self.lease
        let reaper = Reaper(registry: registry, configuration: configuration, counters: Counters(), logger: logger)
        let region = self.common.region
        let presence = NodePresence(registry: registry, logger: logger) { status in
            NodeRecord(kind: .reaper, service: "reaper", region: region, address: "-", status: status)
        }
        Output.line("reaper watching \(registry.displayName)")
        let group = ServiceGroup(
            configuration: .init(
                services: [presence, LogLevelSignals(logger: logger), reaper],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
