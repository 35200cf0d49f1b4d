import ArgumentParser
import NodeRuntime

/// `sky initiator`: the initiators routes declare (`from:`), with a router of their own.
struct InitiatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initiator",
        abstract: "Run the initiators the routes declare under from: (files, CSV, STOMP), with their own router; services are found in the registry."
    )

    @OptionGroup var common: CommonOptions

    @OptionGroup var admin: AdminOptions

    /// The routes this node loads, as a router does; those with a `from:` get their initiators
    /// started here.
    @OptionGroup var routes: RoutesOptions

    /// A node that runs the initiators its routes declare (files, CSV, STOMP) and the routes
    /// themselves, with no HTTP initiator: only its admin endpoints listen.
    func run() async throws {
        let context = try await self.common.context(serviceName: "sky-initiator")
        var configuration = RouterNode.Configuration()
        configuration.routes = self.routes.routes
        configuration.admin = self.admin.address(in: context)
        configuration.runsSourceInitiators = true
        let routes = self.routes.routes
        try await RouterNode(configuration: configuration, context: context) { ready in
            Output.line("initiator running with \(ready.routes.count) routes from \(routes)")
        }.run()
    }
}
