public import Foundation
public import SkyLib
public import RegistryKit

/// What the dashboard shows, built by ``ClusterWatcher`` once a second.
public struct ClusterView: Sendable {
    /// A route or step over the recent window.
    public struct Rates: Sendable {
        /// Requests (or calls) a second.
        public var perSecond: Double
        /// Share of them that failed, 0…1.
        public var errorRate: Double
        public var p50Milliseconds: Double?
        public var p99Milliseconds: Double?
    }

    public struct StepRow: Sendable {
        public var service: String
        public var rates: Rates
        public var retriesPerSecond: Double
    }

    public struct RouteRow: Sendable {
        public var route: String
        public var rates: Rates
        public var inflight: Int64
        public var steps: [StepRow]
    }

    public struct FailureRow: Sendable {
        public var at: Date
        public var route: String
        public var step: Int?
        public var service: String?
        public var code: String
        public var message: String
        public var traceID: String
    }

    public struct RouterStatus: Sendable {
        public var nodeID: String
        public var address: String
        public var error: String?
    }

    public var updatedAt: Date
    public var registry: String
    public var nodes: [NodeRecord]
    public var routes: [RouteRow]
    public var events: [RegistryEvent]
    public var routers: [RouterStatus]
    /// Failed requests reported by the routers, newest first.
    public var failures: [FailureRow] = []
    /// Why the registry could not be read, when it could not.
    public var registryError: String?
    /// Seconds the rates cover.
    public var window: Double

    public static func empty(registry: String) -> ClusterView {
        ClusterView(updatedAt: Date(), registry: registry, nodes: [], routes: [], events: [], routers: [], registryError: nil, window: 0)
    }

    /// Rows from the stats of an interval of `seconds`.
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
                        rates: Self.rates(count: step.calls, errors: step.errors, latency: step.latency, seconds: seconds),
                        retriesPerSecond: Double(step.retries) / seconds
                    )
                }
            )
        }
    }

    private static func rates(count: Int64, errors: Int64, latency: [Int64], seconds: Double) -> Rates {
        Rates(
            perSecond: Double(count) / seconds,
            errorRate: count > 0 ? Double(errors) / Double(count) : 0,
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
            "windowSeconds": .double(self.window),
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
            "routers": .array(self.routers.map { router in
                ["nodeID": .string(router.nodeID), "address": .string(router.address), "error": router.error.map(JSONValue.string) ?? .null]
            }),
        ]
    }
}
