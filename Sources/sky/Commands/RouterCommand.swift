import ArgumentParser
import NodeRuntime
import SkyLib
import RouteModel

/// `sky router`: a router with its HTTP initiator, calling services found in the registry.
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Run a router and its HTTP initiator; services are found in the registry."
    )

    @OptionGroup var common: CommonOptions

    @OptionGroup var routes: RoutesOptions
    @OptionGroup var http: HTTPInitiatorOptions

    /// A router: the HTTP initiator and the routes, calling services found in the registry; no
    /// services, initiators or reaper of its own (run those as their own processes).
    func run() async throws {
        let context = try await self.common.context(serviceName: "sky-router")
        var configuration = RouterNode.Configuration()
        configuration.routes = self.routes.routes
        configuration.http = self.http.address(in: context)
        try await RouterNode(configuration: configuration, context: context) { ready in
            Output.line("router ready at \(AdvertisedAddress.url(ready.address, path: "")) with \(ready.routes.count) routes")
        }.run()
    }
}
