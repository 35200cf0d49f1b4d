import ArgumentParser
import NodeRuntime

/// `--routes`: where a router's routes come from (`sky router`, `sky initiator`).
struct RoutesOptions: ParsableArguments {
    @Option(help: "Folder of route files (*.yaml), reloaded live; or 'registry' for the routes pushed with `sky routes push`.")
    var routes: String = "Routes"

    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: true)
    }
}

/// `--http`: where the HTTP initiator listens (`sky run`, `sky router`).
struct HTTPInitiatorOptions: ParsableArguments {
    @Option(help: "HOST:PORT of the HTTP initiator.")
    var http: HostPort = HostPort(host: "127.0.0.1", port: 8080)

    /// The address to listen on, after a warning when it reaches beyond this machine with no token.
    func address(in context: NodeContext) -> ListenAddress {
        HostPort.warnIfExposed(self.http, token: context.token, logger: context.logger)
        return self.http.listenAddress
    }
}

/// `--admin`: where a node with no HTTP initiator serves `/health`, `/debug/vars` and
/// `/metrics` (`sky initiator`, `sky reaper`, `sky daemon`).
struct AdminOptions: ParsableArguments {
    @Option(help: "HOST:PORT of the admin endpoints (/health, /debug/vars, /metrics); port 0 picks a free one.")
    var admin: HostPort = HostPort(host: "127.0.0.1", port: 0)

    /// The address to listen on, after a warning when it reaches beyond this machine with no token.
    func address(in context: NodeContext) -> ListenAddress {
        HostPort.warnIfExposed(self.admin, token: context.token, logger: context.logger)
        return self.admin.listenAddress
    }
}
