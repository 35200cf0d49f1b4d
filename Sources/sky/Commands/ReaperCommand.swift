import ArgumentParser
import NodeRuntime
import Reaper
import RegistryKit

/// `sky reaper`: removes dead nodes from the registry.
struct ReaperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reaper",
        abstract: "Remove nodes whose heartbeat is older than their TTL, and record why."
    )

    @OptionGroup var common: CommonOptions

    /// `/health` and `/metrics` on their own port: a reaper has no other listener, and its reapings
    /// are counted there.
    @OptionGroup var admin: AdminOptions

    /// Half a second between passes: with the default 3 s TTL a dead node is gone within one TTL
    /// and one pass.
    @Option(help: "Seconds between passes.")
    var interval: Double = 0.5

    /// Three seconds, renewed every pass: a standby reaper takes over within one lease and one pass
    /// of the active one dying.
    @Option(help: "Seconds the active reaper's lease lasts; a standby reaper takes over within this and one --interval after the active one dies.")
    var lease: Double = 3

    /// Runs a ``ReaperNode``.
    func run() async throws {
        let context = try await self.common.context()
        var configuration = ReaperNode.Configuration()
        configuration.reaper.interval = .milliseconds(Int64(self.interval * 1000))
        configuration.reaper.leaseDuration = self.lease
        configuration.admin = self.admin.address(in: context)
        Output.line("reaper watching \(context.registry.displayName)")
        try await ReaperNode(configuration: configuration, context: context).run()
    }
}
