import AsyncHTTPClient
import Foundation
import Initiators
public import NIOCore
public import NIOPosix
public import RegistryKit
public import RouteModel
import SkyLib

/// `sky drill`: drives a route on a live cluster with generated inputs while a fault schedule
/// runs, and accounts for every input by id.
///
/// The order is fixed: every fault's target is checked first (a drill that would touch what it
/// may not never starts), then the load and the faults run together for the drill's length,
/// then the drill waits up to ``Configuration/settle`` for the last outcomes, counts, and
/// records the report in the registry's event log (the dashboard's drills page reads it there).
public struct Drill: Sendable {
    /// What to drive, how hard, and what to break.
    public struct Configuration: Sendable {
        /// The route driven.
        public var route: Route
        /// `http`, `files`, `stomp`; empty: each of the route's own sources, and HTTP when a
        /// router is ready (or the route has no source of its own).
        public var sources: [String] = []
        /// The faults.
        public var schedule: FaultSchedule
        /// How long the load runs.
        public var duration: Duration
        /// Inputs a second, per source.
        public var rate: Double = 20
        /// HTTP requests in flight at most.
        public var concurrency: Int = 4
        /// How long to wait after the load for the last outcomes.
        public var settle: Duration = .seconds(30)
        /// Every input's body (JSON).
        public var input: String = #"{"text":"drill"}"#
        /// The router's `HOST:PORT` for HTTP; `nil`: the first ready router in the registry.
        public var http: String?
        /// The registry the cluster runs on.
        public var registryAddress: RegistryAddress
        /// Where restarted processes write their output.
        public var logs: String
        /// The most a `fill` may write.
        public var fillLimit: Int = 256 << 20
        /// The environment (`SKYNET_STOMP_URL` and its login, for a STOMP source without a url).
        public var environment: [String: String] = [:]
        /// Holds an SQLite registry's write lock for a while (`suspend:registry`).
        public var holdRegistryWriteLock: (@Sendable (Duration) async throws -> Void)?

        /// Creates a `Configuration` from its parts.
        public init(route: Route, schedule: FaultSchedule, duration: Duration, registryAddress: RegistryAddress, logs: String) {
            self.route = route
            self.schedule = schedule
            self.duration = duration
            self.registryAddress = registryAddress
            self.logs = logs
        }
    }

    /// What to drive.
    public let configuration: Configuration
    /// The cluster's registry: its nodes, and the event log the report goes to.
    let registry: any NodeDirectory & EventLog
    /// Where connections run.
    let eventLoopGroup: any EventLoopGroup
    /// Where file work runs.
    let threadPool: NIOThreadPool
    /// The drill's id: `drill-` and eight hex digits, in every input's id.
    public let id: String

    /// Creates a `Drill` from its parts.
    public init(configuration: Configuration, registry: any NodeDirectory & EventLog, eventLoopGroup: any EventLoopGroup, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.registry = registry
        self.eventLoopGroup = eventLoopGroup
        self.threadPool = threadPool
        self.id = "drill-" + String(UInt32.random(in: .min ... .max), radix: 16)
    }

    /// Checks the faults' targets, runs the load and the faults, waits for the outcomes, and
    /// reports (the report is also recorded in the registry's event log).
    /// - Throws: ``DrillError`` when a fault is refused or a source cannot be driven: nothing
    ///   was sent then.
    public func run() async throws(DrillError) -> DrillReport {
        let configuration = self.configuration
        let route = configuration.route
        let ready = ((try? await self.registry.nodes(matching: NodeQuery())) ?? []).filter { $0.status == .ready }
        let router = Self.router(among: ready)
        // Relative drop folders are those of the process watching them (a router with its
        // initiators, or an initiator): read from its working folder when it is shown to run
        // here, else the drill's own.
        let watchers = ready.filter { $0.kind == .router || $0.kind == .initiator }
        let base = watchers.lazy.compactMap { LocalProcess.verified(pid: $0.pid, address: $0.address) }
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0.pid)/cwd") }.first
            ?? FileManager.default.currentDirectoryPath
        func absolute(_ dir: String) -> String { dir.hasPrefix("/") ? dir : base + "/" + dir }
        var folders: [String: String] = [:]
        var broker: StompInitiator.Endpoint?
        for source in route.sources {
            switch source {
            case .files(let files): folders[route.name] = folders[route.name] ?? absolute(files.dir)
            case .csv(let csv): folders[route.name] = folders[route.name] ?? absolute(csv.dir)
            case .stomp(let stomp):
                do { broker = try StompInitiator.Endpoint(url: stomp.url, environment: configuration.environment) } catch {
                    throw DrillError(.badLoad, "route \(route.name): \(error.message)")
                }
            }
        }
        let clockStart = ContinuousClock.now
        let injector = FaultInjector(
            registry: self.registry, registryAddress: configuration.registryAddress, holdWriteLock: configuration.holdRegistryWriteLock,
            threadPool: self.threadPool, broker: broker.map { "\($0.host):\($0.port)" },
            dropFolders: folders, fillLimit: configuration.fillLimit, logs: configuration.logs,
            clock: { Pace.seconds(ContinuousClock.now - clockStart) }
        )
        try await injector.check(configuration.schedule)
        let client = HTTPClient(eventLoopGroupProvider: .shared(self.eventLoopGroup), configuration: .init(timeout: .init(connect: .seconds(1))))
        let loads: [any DrillLoad]
        do { loads = try self.loads(router: router, base: absolute, client: client) } catch {
            try? await client.shutdown()
            throw error
        }
        try? FileManager.default.createDirectory(atPath: configuration.logs, withIntermediateDirectories: true)

        let start = ContinuousClock.now
        let pace = Pace(start: start, end: start + configuration.duration, rate: configuration.rate)
        let sampler = ProcessSampler(registry: self.registry)
        let finished = Locked(false)
        let sampling = Task { await sampler.run { finished.withLock { $0 } } }
        let events = await withTaskGroup(of: [FaultEvent].self) { group in
            for load in loads {
                group.addTask {
                    await load.run(pace, settle: configuration.settle)
                    return []
                }
            }
            for fault in configuration.schedule.faults {
                group.addTask {
                    var events: [FaultEvent] = []
                    for (index, at) in fault.starts(within: configuration.duration).enumerated() {
                        try? await Task.sleep(until: start + at)
                        events.append(await injector.apply(fault, occurrence: index + 1))
                    }
                    return events
                }
            }
            var events: [FaultEvent] = []
            for await some in group { events += some }
            return events.sorted { $0.start < $1.start }
        }
        finished.withLock { $0 = true }
        await sampling.value
        try? await client.shutdown()
        var report = DrillReport.make(
            route: route.name, id: self.id, faults: configuration.schedule.faults.map(\.description), duration: Pace.seconds(configuration.duration),
            settle: Pace.seconds(configuration.settle), ledgers: loads.map { ($0.source, $0.ledger, $0.duplicatesAllowed) }, events: events
        )
        report.processes = sampler.samples.map { series in
            DrillReport.ProcessSeries(name: series.name, pid: series.pid, rss: series.rss, descriptors: series.descriptors)
        }
        try? await self.registry.record(RegistryEvent(
            kind: "drill", nodeID: self.id, service: route.name, message: JSONWriter.string(report.json)
        ))
        return report
    }

    /// The router the drill drives over HTTP: the first ready one here, else any ready one.
    static func router(among nodes: [NodeRecord]) -> NodeRecord? {
        let routers = nodes.filter { $0.kind == .router && $0.status == .ready }
        return routers.first { LocalProcess.verified(pid: $0.pid, address: $0.address) != nil } ?? routers.first
    }

    /// One load per source driven.
    private func loads(router: NodeRecord?, base: (String) -> String, client: HTTPClient) throws(DrillError) -> [any DrillLoad] {
        let configuration = self.configuration
        let route = configuration.route
        var wanted = configuration.sources
        if wanted.isEmpty {
            let own = route.sources.map { source in
                switch source {
                case .files: "files"
                case .csv: "csv"
                case .stomp: "stomp"
                }
            }
            // HTTP when there is a router to post to (every router serves every route), or when
            // the route has no source of its own.
            wanted = (router != nil || configuration.http != nil || own.isEmpty ? ["http"] : []) + own
        }
        var loads: [any DrillLoad] = []
        for name in wanted {
            switch name {
            case "http":
                guard let address = configuration.http ?? router?.address else {
                    throw DrillError(.badLoad, "no ready router in the registry to post to, and no --http")
                }
                let registry = self.registry
                let find: @Sendable () async -> String? = {
                    Self.router(among: (try? await registry.nodes(matching: NodeQuery(kind: .router))) ?? [])?.address
                }
                let findRouter = configuration.http != nil ? nil : find
                loads.append(HTTPLoad(
                    address: Locked(address), findRouter: findRouter, route: route.name, body: configuration.input, concurrency: configuration.concurrency, drillID: self.id,
                    timeout: .seconds(30), client: client
                ))
            case "files":
                guard let files = route.sources.lazy.compactMap({ if case .files(let files) = $0 { files } else { nil } }).first else {
                    throw DrillError(.badLoad, "route \(route.name) has no files source")
                }
                guard let suffix = Self.suffix(for: files.pattern) else {
                    throw DrillError(.badLoad, "route \(route.name): cannot make file names that match the pattern '\(files.pattern)' (the drill's files are named ID-N.EXT: give a pattern *.EXT or *)")
                }
                loads.append(FileLoad(folder: base(files.dir), suffix: suffix, body: configuration.input, drillID: self.id, threadPool: self.threadPool))
            case "csv":
                guard let csv = route.sources.lazy.compactMap({ if case .csv(let csv) = $0 { csv } else { nil } }).first else {
                    throw DrillError(.badLoad, "route \(route.name) has no csv source")
                }
                guard csv.header, csv.delimiter == ",", csv.pattern == "*.csv" || csv.pattern == "*" else {
                    throw DrillError(.badLoad, "route \(route.name): the drill writes comma-separated files with a header named *.csv; this csv source wants another shape")
                }
                guard let input = try? JSONParser.parse(configuration.input), input.objectValue != nil else {
                    throw DrillError(.badLoad, "--input must be a JSON object to become a CSV row")
                }
                loads.append(CSVLoad(folder: base(csv.dir), input: input, drillID: self.id, threadPool: self.threadPool))
            case "stomp":
                guard let stomp = route.sources.lazy.compactMap({ if case .stomp(let stomp) = $0 { stomp } else { nil } }).first else {
                    throw DrillError(.badLoad, "route \(route.name) has no stomp source")
                }
                guard let replyTo = stomp.replyTo else {
                    throw DrillError(.badLoad, "route \(route.name): its stomp source has no replyTo, so the drill cannot see its answers")
                }
                let endpoint: StompInitiator.Endpoint
                do { endpoint = try StompInitiator.Endpoint(url: stomp.url, environment: configuration.environment) } catch {
                    throw DrillError(.badLoad, "route \(route.name): \(error.message)")
                }
                guard !endpoint.secure else { throw DrillError(.badLoad, "route \(route.name): the drill speaks plain STOMP; its broker is stomps://") }
                loads.append(StompLoad(
                    endpoint: endpoint, destination: stomp.destination, replyTo: replyTo, deadLetter: stomp.deadLetter, body: configuration.input,
                    drillID: self.id, eventLoopGroup: self.eventLoopGroup
                ))
            default:
                throw DrillError(.badLoad, "--source \(name): the drill drives http, files, csv and stomp")
            }
        }
        return loads
    }

    /// A file name ending that `pattern` takes: `.json` for `*.json`, `.json` for `*`.
    static func suffix(for pattern: String) -> String? {
        if pattern == "*" { return ".json" }
        guard pattern.hasPrefix("*"), !pattern.dropFirst().contains(where: { "*?[".contains($0) }) else { return nil }
        return String(pattern.dropFirst())
    }
}
