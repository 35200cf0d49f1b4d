import ArgumentParser
import NodeRuntime

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
        let context = try await self.common.context()
        HostPort.warnIfExposed(self.http, token: context.token, logger: context.logger)
        var configuration = RouterNode.Configuration()
        configuration.routes = self.routes
        configuration.http = self.http.listenAddress
        try await RouterNode(configuration: configuration, context: context) { ready in
            Output.line("router ready at http://\(ready.address) with \(ready.routes.count) routes")
        }.run()
    }
}
