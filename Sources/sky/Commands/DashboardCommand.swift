import AdminHTTP
import ArgumentParser
import Dashboard
import NodeRuntime
import RegistryKit
import SkyLib
import RouteModel

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

    /// The registry, TLS and token flags as every node has them: the dashboard reads the same
    /// registry and asks routers over the same TLS.
    @OptionGroup var common: CommonOptions

    /// Port 8090 by default, beside `sky run`'s 8080.
    @Option(help: "HOST:PORT to serve the page on.")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 8090)

    /// Reads the cluster once before serving, so the first page shown is not empty, then refreshes
    /// every second while the page is served. The watcher reads routers through the process's
    /// HTTP client (`NodeContext.httpClient`), whose owner, the process, shuts it down; the page
    /// listens on the process's event loops.
    func run() async throws {
        let context = try await self.common.context()
        HostPort.warnIfExposed(self.http, token: context.token, logger: context.logger)
        let watcher = ClusterWatcher(
            registry: context.registry, registryName: context.registry.displayName, token: context.token, tls: context.tls, client: context.httpClient, logger: context.logger
        )
        await watcher.refresh()
        var server = DashboardServer(
            host: self.http.host, port: self.http.port, token: context.token, tls: context.tls, watcher: watcher, admin: AdminEndpoints(counters: context.counters),
            eventLoopGroup: context.eventLoopGroup, logger: context.logger, onServerRunning: { address in Output.line("dashboard at \(AdvertisedAddress.url(address, path: "/"))") }
        )
        server.limits = context.httpLimits
        try await context.run([watcher, server])
    }
}
