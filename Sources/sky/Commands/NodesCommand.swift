import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime

/// Filters shared by the query commands.
struct NodeFilterOptions: ParsableArguments {
    @Option(help: "Only this service.") var service: String?
    @Option(help: "Only these versions (1.2.0, 1.*, *).") var version: String?
    @Option(help: "Only this region.") var region: String?
    @Option(help: "Only this host.") var host: String?
    @Option(name: .customLong("kind"), help: "Only nodes of this kind: \(NodeKind.allCases.map(\.rawValue).joined(separator: ", ")).") var kindName: String?
    @Flag(help: "Print JSON instead of a table.") var json = false

    /// `--kind` as a ``NodeKind``; `validate()` has refused a name that is not one.
    var kind: NodeKind? { self.kindName.flatMap(NodeKind.init(rawValue:)) }

    /// A version selector that parses (`1.2.0`, `1.*`, `*`).
    func validate() throws {
        if let kindName, self.kind == nil {
            throw ValidationError("unknown --kind '\(kindName)' (kinds: \(NodeKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if let version, VersionSelector(version) == nil {
            throw ValidationError("bad --version '\(version)' (use 1.2.0, 1.* or *)")
        }
    }

    /// The filters as a registry query: matched by the driver (an index in MongoDB), not after
    /// reading every node.
    var query: NodeQuery { NodeQuery(kind: self.kind, service: self.service, version: self.version, region: self.region, host: self.host) }
}

/// `sky nodes`: every node in the registry; `add` and `remove` for nodes kept by hand.
struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the nodes in the registry, or add and remove nodes by hand.",
        subcommands: [List.self, Add.self, Remove.self],
        defaultSubcommand: List.self
    )

    /// `sky nodes` (`list` is the default): the nodes that match, with whether each is ready,
    /// expired or draining as routers see it, and a line when a reaper is holding back a mass
    /// reaping.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the nodes in the registry.")

        @OptionGroup var filter: NodeFilterOptions
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// Prints the table (or JSON, with each node as routers see it now), then any reaper's
        /// notice that it is holding back: a listing that looks healthy while a reaper refuses to
        /// act would mislead.
        func run() async throws {
            let nodes = try await RegistryAddress.resolve(flag: self.registry).open().nodes(matching: self.filter.query)
            if self.filter.json {
                Output.line(JSONWriter.string(.array(nodes.map { $0.shownJSON() })))
                return
            }
            Output.line(Table.render(header: NodeTable.header, rows: nodes.map(NodeTable.row)))
            for notice in nodes.compactMap({ $0.reaperHoldingBack() }) { Output.line(notice) }
        }
    }

    /// The original Skynet's AddToConfig: a service registered by hand, for processes that
    /// cannot write the registry themselves.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Register a service instance by hand.",
            discussion: "It does not heartbeat, so by default it never expires; the reaper still removes it when its /health goes unanswered three times in a row over at least 3 s."
        )

        @Option(help: "The service's name.") var service: String
        @Option(help: "HOST:PORT where it answers POST /call.") var address: HostPort
        @Option(help: "Its version.") var version: String = "1.0.0"
        @Option(help: "Its region.") var region: String = "local"
        /// The same default as a node started by `sky`, so `sky dns` answers for a node added by
        /// hand under the same names.
        @Option(help: "Its environment (a label of its DNS names).") var environment: String = NodeRecord.defaultEnvironment
        @Option(help: "Its host name (default: the address's host).") var host: String?
        /// Ten years: a node added by hand has no process to heartbeat for it, so only a failing
        /// /health (the reaper's probe) or `sky nodes remove` takes it out.
        @Option(help: "Seconds without heartbeat before it counts as dead (default: never).") var ttl: Double = 10 * 365 * 86400
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// A name a route can call, an exact version (not a selector), an environment that is one
        /// DNS label.
        func validate() throws {
            guard RouteParser.isValidName(self.service) else { throw ValidationError("service name '\(self.service)' may only use letters, digits, '-', '_' and '.'") }
            guard VersionSelector(self.version) != nil, !self.version.contains("*") else { throw ValidationError("bad version '\(self.version)'") }
            for (flag, value) in [("--environment", self.environment)] where !DNSLabel.isValid(value) {
                throw ValidationError("\(flag) '\(value)' must be one DNS label: letters, digits and '-', at most 63, not starting or ending with '-'")
            }
        }

        /// Registers the node as ready and records a `registered` event, so the dashboard and `sky
        /// nodes` show who added it and when, like any other arrival.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let node = NodeRecord(
                kind: .service, service: self.service, version: self.version, region: self.region, environment: self.environment,
                host: self.host ?? self.address.host, address: self.address.description, pid: 0, status: .ready, ttl: self.ttl,
                stats: ["manual": 1]
            )
            try await registry.register(node)
            try await registry.record(RegistryEvent(kind: "registered", nodeID: node.id, service: node.service, message: "added by hand at \(node.address)"))
            Output.line("added \(node.service) \(node.version) at \(node.address) node \(node.id)")
        }
    }

    /// The original Skynet's RemoveFromConfig.
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove nodes by id (or a unique id prefix) or by address.")

        @Argument(help: "Node id, a unique prefix of one, or the short id sky nodes shows.") var id: String?
        @Option(help: "Remove the nodes at this HOST:PORT.") var address: String?
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// An id or an address, exactly one: both would leave unclear which one selects.
        func validate() throws {
            guard (self.id == nil) != (self.address == nil) else { throw ValidationError("give a node id or --address, not both or neither") }
        }

        /// Refuses an id prefix that matches several nodes (ids of nodes started together share a
        /// prefix), removes every node at an address, and records a `deregistered` event per node
        /// so the removal shows in the event log.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let nodes = try await registry.nodes()
            let matches: [NodeRecord]
            if let id {
                matches = nodes.filter { Identifiers.matches($0.id, typed: id) }
                guard matches.count <= 1 else {
                    Output.line("'\(id)' matches \(matches.count) nodes; give more of the id")
                    throw ExitCode(1)
                }
            } else {
                matches = nodes.filter { $0.address == self.address }
            }
            guard !matches.isEmpty else {
                Output.line("no node matches")
                throw ExitCode(1)
            }
            for node in matches {
                try await registry.deregister(nodeID: node.id)
                try await registry.record(RegistryEvent(kind: "deregistered", nodeID: node.id, service: node.service, message: "removed by hand"))
                Output.line("removed \(node.service) at \(node.address) node \(node.id)")
            }
        }
    }
}

/// `sky services`: services and their instances.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "List services with their instances.")

    @OptionGroup var filter: NodeFilterOptions
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    /// One row per service and version, with the circuit-breaker state each router reports in its
    /// node stats: the question when a service misbehaves is whether routers have stopped calling
    /// it.
    func run() async throws {
        var query = self.filter.query
        query.kind = .service
        let registry = try await RegistryAddress.resolve(flag: self.registry).open()
        let nodes = try await registry.nodes(matching: query)
        // Each router's circuit breakers, from its node stats (`breaker.SERVICE`: 1 half-open, 2 open).
        let routers = try await registry.nodes(matching: NodeQuery(kind: .router)).filter { $0.isShownReady() }
        func breakers(_ service: String) -> String {
            let states = routers.compactMap { $0.stats["breaker.\(service)"] }.filter { $0 > 0 }
            guard !states.isEmpty else { return "-" }
            let open = states.filter { $0 == 2 }.count, probing = states.count - open
            return [open > 0 ? "open on \(open)/\(routers.count) routers" : nil, probing > 0 ? "half-open on \(probing)" : nil].compactMap { $0 }.joined(separator: ", ")
        }
        let groups = Dictionary(grouping: nodes) { "\($0.service)\u{0}\($0.version)" }.sorted { $0.key < $1.key }
        if self.filter.json {
            Output.line(JSONWriter.string(.array(groups.map { _, nodes in
                ["service": .string(nodes[0].service), "version": .string(nodes[0].version), "instances": .array(nodes.map { $0.shownJSON() }), "breaker": .string(breakers(nodes[0].service))]
            })))
            return
        }
        let rows = groups.map { _, nodes in
            [nodes[0].service, nodes[0].version, "\(nodes.count)", "\(nodes.filter { $0.isShownReady() }.count)",
             Set(nodes.map(\.region)).sorted().joined(separator: ","), breakers(nodes[0].service), nodes.map(\.address).joined(separator: " ")]
        }
        Output.line(Table.render(header: ["SERVICE", "VERSION", "INSTANCES", "READY", "REGIONS", "BREAKER", "ADDRESSES"], rows: rows))
    }
}
