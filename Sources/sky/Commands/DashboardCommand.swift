import AdminHTTP
import ArgumentParser
import Dashboard
import NodeRuntime
import RegistryKit
import SkyLib

/// `sky dashboard`: a live web page of the cluster.
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve a live web page of the cluster: nodes, routes with rates, errors and latency, reaper events.",
        discussion: """
            Nodes and events come from the registry; route and step figures from every ready \
            router's /debug/stats, over the last 10 s. With SKYNET_TOKEN set, the page asks the \
            browser to log in: any user name, the token as password.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "HOST:PORT to serve the page on.")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 8090)

    func run() async throws {
        let context = try await self.common.context()
        HostPort.warnIfExposed(self.http, token: context.token, logger: context.logger)
        let watcher = ClusterWatcher(registry: context.registry, registryName: context.registry.displayName, token: context.token, tls: context.tls, logger: context.logger)
        await watcher.refresh()
        var server = DashboardServer(
            host: self.http.host, port: self.http.port, token: context.token, tls: context.tls, watcher: watcher, admin: AdminEndpoints(counters: context.counters),
            logger: context.logger, onServerRunning: { address in Output.line("dashboard at \(AdvertisedAddress.url(address, path: "/"))") }
        )
        server.limits = context.httpLimits
        try await context.run([watcher, server])
    }
}
