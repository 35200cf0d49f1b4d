import ArgumentParser
import NodeRuntime

/// `--routes`: where a router's routes come from (`sky router`, `sky initiator`).
struct RoutesOptions: ParsableArguments {
    /// `Routes/` by default: the folder `sky run` serves and `sky generate route` writes to.
    @Option(help: "Folder of route files (*.yaml), reloaded live; or 'registry' for the routes pushed with `sky routes push`.")
    var routes: String = "Routes"

    /// A folder that exists, or `registry`: a missing folder is refused at start rather than served
    /// as a router with no routes.
    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: true)
    }
}

/// `--http`: where the HTTP initiator listens (`sky run`, `sky router`).
struct HTTPInitiatorOptions: ParsableArguments {
    /// Loopback port 8080 by default: nothing is reachable from another machine until the operator
    /// says so (and sets a token).
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
    /// A free loopback port by default: several such processes on one host must not collide, and
    /// they register the port they got.
    @Option(help: "HOST:PORT of the admin endpoints (/health, /debug/vars, /metrics); port 0 picks a free one.")
    var admin: HostPort = HostPort(host: "127.0.0.1", port: 0)

    /// The address to listen on, after a warning when it reaches beyond this machine with no token.
    func address(in context: NodeContext) -> ListenAddress {
        HostPort.warnIfExposed(self.admin, token: context.token, logger: context.logger)
        return self.admin.listenAddress
    }
}
