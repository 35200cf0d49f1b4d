public import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import SkyLib
import RouteModel
public import RegistryKit
public import TLS

/// Builds the dashboard's ``ClusterView`` every `interval`: nodes and reaper events from the
/// registry, and each ready router's `/debug/stats`, subtracted from what it said about
/// `window` ago, so rates and percentiles are those of the last few seconds, summed over
/// every router.
public final class ClusterWatcher: Service, Sendable {
    /// How often the registry and the routers are read.
    public let interval: Duration
    /// How far back rates and latencies reach.
    public let window: Duration
    /// The registry's roles the page reads: nodes, events and the cluster's counts.
    private let registry: any NodeDirectory & EventLog & CountStore & FailedStore
    /// The registry's name, for the page (no credentials).
    private let registryName: String
    /// Reads every router's `/debug/stats` (and progress), one request each per refresh, with a 2 s
    /// timeout so one router that hangs cannot stall the page. The node's client, as the reaper's
    /// probe uses: its owner shuts it down, so a watcher refreshed without ``run()`` (a test, a
    /// one-shot view) leaves nothing to close.
    private let client: HTTPClient
    /// The cluster's shared secret, sent to the nodes' admin endpoints.
    private let token: String?
    /// The process's TLS, for nodes that serve https.
    private let tls: NodeTLS?
    /// Where unreachable routers are logged.
    private let logger: Logger
    /// The latest view, swapped whole on each refresh: the page reads it without waiting for the
    /// next one.
    private let view: Locked<ClusterView>
    /// The nodes, through the same cache and query API routers use (refreshed here, once per
    /// view, rather than by its own loop).
    private let cache: RegistryCache
    /// Each router's recent snapshots, oldest first, by node id.
    private let history = Locked<[String: [(at: ContinuousClock.Instant, stats: RouterStats)]]>([:])
    /// Routers that did not answer, left alone until the time given, with what went wrong:
    /// a dead router would otherwise hold every refresh for the client's timeout.
    private let unreachable = Locked<[String: (until: ContinuousClock.Instant, error: String)]>([:])
    /// How long a router that did not answer is left alone.
    public let quarantine: Duration
    /// Each route's samples over the last ``chartSpan``, oldest first: the charts' data.
    private let series = Locked<[String: [ClusterView.Sample]]>([:])
    /// How far back the charts reach, in seconds.
    public static let chartSpan: Double = 300

    /// Creates a `ClusterWatcher` from its parts.
    /// - Parameters:
    ///   - registry: the registry's nodes, events and counts.
    ///   - registryName: how the page names the registry (no credentials).
    ///   - quarantine: how long a router that did not answer is not asked again (its row keeps
    ///     the error meanwhile); 5 s, so a dead router costs one timeout per five refreshes,
    ///     not one per refresh, and a router back from a pause is seen within seconds.
    public init(
        registry: any NodeDirectory & EventLog & CountStore & FailedStore, registryName: String, token: String?, tls: NodeTLS? = nil, interval: Duration = .seconds(1),
        window: Duration = .seconds(10), quarantine: Duration = .seconds(5), client: HTTPClient, logger: Logger
    ) {
        self.quarantine = quarantine
        self.client = client
        self.registry = registry
        self.registryName = registryName
        self.token = token
        self.tls = tls
        self.interval = interval
        self.window = window
        self.logger = logger
        self.view = Locked(.empty(registry: registryName))
        self.cache = RegistryCache(directory: registry, registryName: registryName, logger: logger)
    }

    /// The latest view.
    public var current: ClusterView { self.view.withLock { $0 } }

    /// The registry's most recent events, newest first (the drills page finds `sky drill`'s
    /// reports among them).
    func events(limit: Int) async throws -> [RegistryEvent] {
        try await self.registry.events(limit: limit)
    }

    /// Asks for every failed input of `route` to be redriven (the dashboard's button), each moved
    /// only from `failed`, as `sky failed redrive --route` does.
    /// - Returns: how many were asked for.
    public func redrive(route: String, actor: String) async throws -> Int {
        var asked = 0
        for item in try await self.registry.failedItems(FailedQuery(route: route, states: [.failed]), limit: 10_000) {
            if try await self.registry.moveFailed(id: item.id, from: [.failed], updatedBefore: nil, to: .redrive, actor: actor, note: "", now: Date()) != nil {
                asked += 1
            }
        }
        if asked > 0 { self.logger.notice("redrive asked from the dashboard", metadata: ["route": "\(route)", "inputs": "\(asked)"]) }
        await self.refresh()
        return asked
    }

    /// Refreshes the view every ``interval`` until shutdown; a refresh that fails (the registry
    /// unreachable) keeps the last view and says so on the page.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await self.refresh()
            try? await Task.sleep(for: self.interval)
        }
    }

    /// Reads everything once and replaces the view.
    ///
    /// The nodes, events and totals from the registry; every ready router's stats and every
    /// router's and initiator's work in flight, asked for side by side (one round of requests a
    /// refresh, each with its own 2 s timeout). Rates are the difference between a router's
    /// stats now and its oldest snapshot within ``window``: a router seen for the first time
    /// shows its routes idle rather than its whole history as one second's traffic, and a
    /// router gone from the registry is forgotten with its snapshots.
    public func refresh() async {
        var view = ClusterView.empty(registry: self.registryName)
        do {
            guard await self.cache.refresh() else { throw SkyError(.registry, "cannot read the nodes from \(self.registryName)") }
            view.nodes = self.cache.nodes(matching: .all).sorted { ($0.kind.rawValue, $0.service, $0.address) < ($1.kind.rawValue, $1.service, $1.address) }
            view.events = try await self.registry.events(limit: 15)
            view.totals = try await self.registry.counts().routeTotals
            view.failedWork = ClusterView.FailedRow.rows(try await self.registry.failedCounts(states: [.failed, .redrive, .running]))
        } catch {
            // Keep showing the last nodes we knew, and say the registry is unreachable.
            view.nodes = self.current.nodes
            view.events = self.current.events
            view.totals = self.current.totals
            view.failedWork = self.current.failedWork
            view.registryError = "\(error)"
        }
        let now = ContinuousClock.now
        let resting = self.unreachable.withLock { unreachable in
            unreachable = unreachable.filter { $0.value.until > now }
            return unreachable
        }
        let shown = view.nodes.filter { $0.kind == .router && $0.isShownReady(at: view.updatedAt) }
        let routers = shown.filter { resting[$0.id] == nil }
        for router in shown where resting[router.id] != nil {
            view.routers.append(.init(nodeID: router.id, address: router.address, error: resting[router.id]?.error))
        }
        // Work in flight is asked for while the stats are: one round of requests a refresh.
        async let progress = self.fetchProgress(
            view.nodes.filter { [.router, .initiator].contains($0.kind) && $0.isShownReady(at: view.updatedAt) && resting[$0.id] == nil }
        )
        let results = await withTaskGroup(of: (NodeRecord, Result<RouterStats, any Error>).self) { group in
            for router in routers {
                group.addTask {
                    do {
                        return (router, .success(try await self.fetchStats(router)))
                    } catch {
                        return (router, .failure(error))
                    }
                }
            }
            var results: [(NodeRecord, Result<RouterStats, any Error>)] = []
            for await result in group { results.append(result) }
            return results
        }
        view.progress = await progress
        var total = RouterStats()
        var longest = 0.0
        for (router, result) in results {
            switch result {
            case .success(let stats):
                view.routers.append(.init(nodeID: router.id, address: router.address, error: nil))
                view.failures += stats.failures
                view.routeProblems += stats.problems.map { (router.address, $0) }
                let baseline = self.history.withLock { history -> (ContinuousClock.Instant, RouterStats)? in
                    var snapshots = history[router.id, default: []]
                    snapshots.append((now, stats))
                    snapshots.removeAll { now - $0.at > self.window }
                    history[router.id] = snapshots
                    return snapshots.count > 1 ? (snapshots[0].at, snapshots[0].stats) : nil
                }
                if let (at, earlier) = baseline {
                    total.add(stats.subtracting(earlier))
                    longest = max(longest, (now - at).seconds)
                } else {
                    // First sight of this router: no interval yet, show its routes idle.
                    total.add(stats.subtracting(stats))
                }
            case .failure(let error):
                let said = "\(error) (not asked again for \(self.quarantine.seconds) s)"
                self.unreachable.withLock { $0[router.id] = (now + self.quarantine, said) }
                view.routers.append(.init(nodeID: router.id, address: router.address, error: said))
            }
        }
        let live = Set(shown.map(\.id))
        self.history.withLock { history in history = history.filter { live.contains($0.key) } }
        view.failures = Array(view.failures.sorted { $0.at > $1.at }.prefix(15))
        view.window = longest
        view.routes = ClusterView.rows(total, seconds: longest)
        view.updatedAt = Date()
        view.series = self.series.withLock { series in
            for route in view.routes { series[route.route, default: []].append(.init(at: view.updatedAt, rates: route.rates)) }
            // A route no router serves any more keeps its line until it ages out.
            for name in Array(series.keys) {
                series[name]?.removeAll { view.updatedAt.timeIntervalSince($0.at) > Self.chartSpan }
                if series[name]?.isEmpty == true { series[name] = nil }
            }
            return series
        }
        self.view.withLock { $0 = view }
    }

    /// Every node's work in flight (`/debug/progress`), oldest first; a node that does not
    /// answer shows nothing (its stats say it is unreachable).
    private func fetchProgress(_ nodes: [NodeRecord]) async -> [ProgressBoard.Snapshot] {
        await withTaskGroup(of: [ProgressBoard.Snapshot].self) { group in
            for node in nodes {
                group.addTask {
                    guard let json = try? await self.get("/debug/progress", from: node) else { return [] }
                    return (json["progress"]?.arrayValue ?? []).compactMap(ProgressBoard.Snapshot.init(json:))
                }
            }
            var all: [ProgressBoard.Snapshot] = []
            for await some in group { all += some }
            return all.sorted { $0.startedAt < $1.startedAt }
        }
    }

    /// One router's cumulative stats; the interval's rates come from subtracting an earlier
    /// snapshot.
    private func fetchStats(_ router: NodeRecord) async throws -> RouterStats {
        RouterStats(json: try await self.get("/debug/stats", from: router))
    }

    /// `GET PATH` on a node's admin endpoints (its TLS, the token), as JSON.
    private func get(_ path: String, from node: NodeRecord) async throws -> JSONValue {
        var request = HTTPClientRequest(url: AdvertisedAddress.url(node.address, path: path))
        request.tlsConfiguration = self.tls?.client
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await self.client.execute(request, timeout: .seconds(2))
        let body = try await response.body.collect(upTo: 4 << 20)
        guard response.status == .ok else { throw SkyError(.badResponse, "GET \(path) answered \(response.status.code)") }
        return try JSONParser.parse(Array(buffer: body))
    }
}
