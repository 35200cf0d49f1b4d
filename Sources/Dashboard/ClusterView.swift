public import Foundation
public import SkyLib
public import RouteModel
public import RegistryKit

/// What the dashboard shows, built by ``ClusterWatcher`` once a second.
public struct ClusterView: Sendable {
    /// A route or step over the recent window.
    public struct Rates: Sendable {
        /// Requests (or calls) a second.
        public var perSecond: Double
        /// Share of them that failed, 0…1.
        public var errorRate: Double
        /// Median latency, when anything finished in the window.
        public var p50Milliseconds: Double?
        /// 99th-percentile latency, when anything finished in the window.
        public var p99Milliseconds: Double?
    }

    /// One step of a route, across every router.
    public struct StepRow: Sendable {
        /// The service the step calls.
        public var service: String
        /// Its calls over the window.
        public var rates: Rates
        /// Retries a second.
        public var retriesPerSecond: Double
    }

    /// One route, across every router.
    public struct RouteRow: Sendable {
        /// The route's name.
        public var route: String
        /// Its requests over the window.
        public var rates: Rates
        /// Requests in the route now.
        public var inflight: Int64
        /// Its steps, in route order.
        public var steps: [StepRow]
        /// Requests a second by initiator kind (`http`, `files`, `csv`, `stomp`, `other`).
        public var sourceRates: [String: Double] = [:]
        /// Its `from:` sources, labelled (`files drop/text/*.json` …).
        public var from: [String] = []
    }

    /// One route at one moment, for its charts.
    public struct Sample: Sendable {
        /// When.
        public var at: Date
        /// The route's rates over the window then.
        public var rates: Rates
    }

    /// A failed request, as a router reported it.
    public struct FailureRow: Sendable {
        /// When it failed.
        public var at: Date
        /// The route it ran.
        public var route: String
        /// The step that failed (1-based), when one did.
        public var step: Int?
        /// The service that step called.
        public var service: String?
        /// The error's code (`deadline_exceeded`, `service_error` …).
        public var code: String
        /// The error's message.
        public var message: String
        /// The request's trace (`sky trace ID`).
        public var traceID: String
    }

    /// One route's failed inputs waiting in the registry (`sky failed`).
    public struct FailedRow: Sendable, Hashable {
        /// The route.
        public var route: String
        /// Failed, waiting for a redrive or a drop.
        public var failed: Int
        /// Asked to be redriven, or put back and running again.
        public var redriving: Int
        /// The sources they came through (`csv drop/rows` …).
        public var sources: [String]
    }

    /// Whether a router's `/debug/stats` could be read.
    public struct RouterStatus: Sendable {
        /// The router's node id.
        public var nodeID: String
        /// Where it listens.
        public var address: String
        /// Why its stats could not be read, when they could not.
        public var error: String?
    }

    /// When the view was built.
    public var updatedAt: Date
    /// The registry read, without credentials.
    public var registry: String
    /// Every node record.
    public var nodes: [NodeRecord]
    /// Every route any router serves.
    public var routes: [RouteRow]
    /// The latest cluster events, newest first.
    public var events: [RegistryEvent]
    /// The routers asked for stats.
    public var routers: [RouterStatus]
    /// Failed requests reported by the routers, newest first.
    public var failures: [FailureRow] = []
    /// Failed inputs per route, from the registry.
    public var failedWork: [FailedRow] = []
    /// Route files the routers refused at their last load, with the router's address; each
    /// router meanwhile serves the last good revision.
    public var routeProblems: [(router: String, problem: RouteProblem)] = []
    /// Requests per route since the cluster began, over every router and initiator, dead ones
    /// included (the registry's G-Counter).
    public var totals: [RouteTotal] = []
    /// Each route's recent samples, oldest first (the last ``ClusterWatcher`` history span).
    public var series: [String: [Sample]] = [:]
    /// Long work in flight on the routers and initiators (CSV files, drop-folder backlogs),
    /// oldest first.
    public var progress: [ProgressBoard.Snapshot] = []
    /// Why the registry could not be read, when it could not.
    public var registryError: String?
    /// Seconds the rates cover.
    public var window: Double

    /// Circuit breakers that are not closed, from the routers' node stats: which router,
    /// which service, `open` or `half-open`.
    public var breakers: [(router: NodeRecord, service: String, state: String)] {
        self.nodes.filter { $0.kind == .router && $0.isShownReady(at: self.updatedAt) }.flatMap { router in
            router.stats.filter { $0.key.hasPrefix("breaker.") && $0.value > 0 }.sorted { $0.key < $1.key }.map { key, value in
                (router, String(key.dropFirst("breaker.".count)), value == 2 ? "open" : "half-open")
            }
        }
    }

    /// The view before anything has been read.
    public static func empty(registry: String) -> ClusterView {
        ClusterView(updatedAt: Date(), registry: registry, nodes: [], routes: [], events: [], routers: [], registryError: nil, window: 0)
    }

    /// Rows from the stats of an interval of `seconds` (the difference of two snapshots): per
    /// route and step, rates a second rather than cumulative counts, since the page shows what
    /// is happening now. `seconds` is kept above zero, so a first refresh right after another
    /// cannot divide by it.
    static func rows(_ stats: RouterStats, seconds: Double) -> [RouteRow] {
        let seconds = max(seconds, 0.001)
        return stats.routes.values.sorted { $0.route < $1.route }.map { route in
            RouteRow(
                route: route.route,
                rates: Self.rates(count: route.processed + route.errors, errors: route.errors, latency: route.latency, seconds: seconds),
                inflight: route.inflight,
                steps: route.steps.map { step in
                    StepRow(
                        service: step.service,
                        // Attempts that ended in the window, and those of them that failed: one
                        // denominator, so the rate never passes 100 % (calls are counted when
                        // they start, errors when they end; a window can split the two).
                        rates: Self.rates(count: step.succeeded + step.errors, errors: step.errors, latency: step.latency, seconds: seconds),
                        retriesPerSecond: Double(step.retries) / seconds
                    )
                },
                sourceRates: route.sources.mapValues { Double($0) / seconds },
                from: route.from
            )
        }
    }

    /// Rates over an interval of `seconds`: requests a second, the share that failed (clamped to 1:
    /// calls are counted when they start and errors when they end, so in a window the two can
    /// disagree), and p50/p99 from the interval's histogram, in milliseconds.
    static func rates(count: Int64, errors: Int64, latency: [Int64], seconds: Double) -> Rates {
        Rates(
            perSecond: Double(count) / seconds,
            errorRate: count > 0 ? min(1, Double(max(0, errors)) / Double(count)) : 0,
            p50Milliseconds: LatencyHistogram.quantile(0.5, of: latency).map { $0 / 1000 },
            p99Milliseconds: LatencyHistogram.quantile(0.99, of: latency).map { $0 / 1000 }
        )
    }

    /// The view as JSON (`GET /api/state`).
    public var json: JSONValue {
        func rates(_ rates: Rates) -> JSONValue {
            [
                "perSecond": .double(rates.perSecond), "errorRate": .double(rates.errorRate),
                "p50Ms": rates.p50Milliseconds.map(JSONValue.double) ?? .null,
                "p99Ms": rates.p99Milliseconds.map(JSONValue.double) ?? .null,
            ]
        }
        return [
            "updatedAt": .double(self.updatedAt.timeIntervalSince1970),
            "registry": .string(self.registry),
            "registryError": self.registryError.map(JSONValue.string) ?? .null,
            "totals": .array(self.totals.map { total in
                ["route": .string(total.route), "ok": .int(total.ok), "failed": .int(total.failed), "nodes": .int(Int64(total.nodes))]
            }),
            "breakers": .array(self.breakers.map { ["router": .string($0.router.address), "service": .string($0.service), "state": .string($0.state)] }),
            "reaperHoldingBack": .array(self.nodes.compactMap { $0.reaperHoldingBack(at: self.updatedAt) }.map(JSONValue.string)),
            "windowSeconds": .double(self.window),
            "progress": .array(self.progress.map(\.json)),
            "nodes": .array(self.nodes.map { node in
                var json = node.shownJSON(at: self.updatedAt)
                if case .object(var fields) = json {
                    fields["heartbeatAgeSeconds"] = .double(self.updatedAt.timeIntervalSince(node.heartbeatAt))
                    json = .object(fields)
                }
                return json
            }),
            "routes": .array(self.routes.map { route in
                [
                    "route": .string(route.route), "rates": rates(route.rates), "inflight": .int(route.inflight),
                    "steps": .array(route.steps.map { step in
                        ["service": .string(step.service), "rates": rates(step.rates), "retriesPerSecond": .double(step.retriesPerSecond)]
                    }),
                ]
            }),
            "events": .array(self.events.map { event in
                [
                    "at": .double(event.at.timeIntervalSince1970), "kind": .string(event.kind), "nodeID": .string(event.nodeID),
                    "service": .string(event.service), "message": .string(event.message),
                ]
            }),
            "failures": .array(self.failures.map { failure in
                [
                    "at": .double(failure.at.timeIntervalSince1970), "route": .string(failure.route),
                    "step": failure.step.map { .int(Int64($0)) } ?? .null, "service": failure.service.map(JSONValue.string) ?? .null,
                    "code": .string(failure.code), "message": .string(failure.message), "traceId": .string(failure.traceID),
                ]
            }),
            "failedWork": .array(self.failedWork.map { row in
                [
                    "route": .string(row.route), "failed": .int(Int64(row.failed)), "redriving": .int(Int64(row.redriving)),
                    "sources": .array(row.sources.map(JSONValue.string)),
                ]
            }),
            "routers": .array(self.routers.map { router in
                ["nodeID": .string(router.nodeID), "address": .string(router.address), "error": router.error.map(JSONValue.string) ?? .null]
            }),
        ]
    }
}

extension ClusterView.FailedRow {
    /// Open items' counts per route, routes sorted by name.
    static func rows(_ counts: [FailedCount]) -> [ClusterView.FailedRow] {
        var rows: [String: ClusterView.FailedRow] = [:]
        for count in counts where count.state.isOpen && count.count > 0 {
            var row = rows[count.route] ?? ClusterView.FailedRow(route: count.route, failed: 0, redriving: 0, sources: [])
            if count.state == .failed { row.failed += count.count } else { row.redriving += count.count }
            let source = "\(count.source.rawValue) \(count.resource)"
            if !row.sources.contains(source) { row.sources.append(source) }
            rows[count.route] = row
        }
        return rows.values.sorted { $0.route < $1.route }
    }
}
