import ArgumentParser
import NodeRuntime

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
        let context = try await self.common.context()
        HostPort.warnIfExposed(self.admin, token: context.token, logger: context.logger)
        var configuration = RouterNode.Configuration()
        configuration.routes = self.routes
        configuration.admin = self.admin.listenAddress
        configuration.runsSourceInitiators = true
        let routes = self.routes
        try await RouterNode(configuration: configuration, context: context) { ready in
            Output.line("initiator running with \(ready.routes.count) routes from \(routes)")
        }.run()
    }
}
