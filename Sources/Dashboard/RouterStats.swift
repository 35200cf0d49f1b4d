import Foundation
import SkyLib
import RouteModel

/// One router's cumulative `/debug/stats`, parsed; two of them subtract into an interval.
struct RouterStats: Sendable {
    /// One step's cumulative counts and latency histogram, as `/debug/stats` gives them.
    struct Step: Sendable {
        var service: String
        var calls: Int64
        /// Attempts that ended well (with `errors`: every attempt that ended).
        var succeeded: Int64
        var errors: Int64
        var retries: Int64
        var latency: [Int64]
    }

    /// One route's cumulative counts, histogram and steps.
    struct Route: Sendable {
        var route: String
        var processed: Int64
        var errors: Int64
        var inflight: Int64
        var asyncDropped: Int64
        var latency: [Int64]
        var steps: [Step]
        /// Requests by initiator kind (`http`, `files`, `csv`, `stomp`, `other`).
        var sources: [String: Int64] = [:]
        /// The route's `from:` sources, labelled (`files drop/text/*.json` …).
        var from: [String] = []
    }

    /// The routes, by name.
    var routes: [String: Route]
    /// The router's recent failures, newest first (not subtracted: they are a list).
    var failures: [ClusterView.FailureRow] = []
    /// Its refused route files (not subtracted: they are a list).
    var problems: [RouteProblem] = []

    /// Stats made of `routes` (tests, and sums over routers).
    init(routes: [String: Route] = [:]) {
        self.routes = routes
    }

    /// Reads `GET /debug/stats`: a route without a name is left out and a missing field reads
    /// as zero (a router of an older version), rather than failing the whole router's view.
    init(json: JSONValue) {
        var routes: [String: Route] = [:]
        for item in json["routes"]?.arrayValue ?? [] {
            guard let name = item["route"]?.stringValue else { continue }
            routes[name] = Route(
                route: name,
                processed: item["processed"]?.intValue ?? 0,
                errors: item["errors"]?.intValue ?? 0,
                inflight: item["inflight"]?.intValue ?? 0,
                asyncDropped: item["asyncDropped"]?.intValue ?? 0,
                latency: LatencyHistogram.dense(item["latency"]),
                steps: (item["steps"]?.arrayValue ?? []).map { step in
                    Step(
                        service: step["service"]?.stringValue ?? "?",
                        calls: step["calls"]?.intValue ?? 0,
                        // A router from before `succeeded` existed: the calls that did not fail.
                        succeeded: step["succeeded"]?.intValue ?? max(0, (step["calls"]?.intValue ?? 0) - (step["errors"]?.intValue ?? 0)),
                        errors: step["errors"]?.intValue ?? 0,
                        retries: step["retries"]?.intValue ?? 0,
                        latency: LatencyHistogram.dense(step["latency"])
                    )
                },
                sources: (item["sources"]?.objectValue ?? [:]).compactMapValues(\.intValue),
                from: (item["from"]?.arrayValue ?? []).compactMap(\.stringValue)
            )
        }
        self.routes = routes
        self.problems = (json["problems"]?.arrayValue ?? []).compactMap(RouteProblem.init(json:))
        self.failures = (json["failures"]?.arrayValue ?? []).map { item in
            ClusterView.FailureRow(
                at: Date(timeIntervalSince1970: item["at"]?.doubleValue ?? 0),
                route: item["route"]?.stringValue ?? "?",
                step: item["step"]?.intValue.map { Int($0) },
                service: item["service"]?.stringValue,
                code: item["code"]?.stringValue ?? "",
                message: item["message"]?.stringValue ?? "",
                traceID: item["traceId"]?.stringValue ?? ""
            )
        }
    }

    /// What happened between `earlier` and this snapshot (a restarted router's counters start
    /// again from zero: then this snapshot is the interval).
    func subtracting(_ earlier: RouterStats) -> RouterStats {
        var result = self
        for (name, route) in self.routes {
            guard let old = earlier.routes[name], old.processed + old.errors <= route.processed + route.errors else { continue }
            var delta = route
            delta.processed -= old.processed
            delta.errors -= old.errors
            delta.sources = route.sources.reduce(into: [:]) { result, pair in
                result[pair.key] = max(0, pair.value - (old.sources[pair.key] ?? 0))
            }
            delta.asyncDropped = max(0, route.asyncDropped - old.asyncDropped)
            delta.latency = Self.minus(route.latency, old.latency)
            if old.steps.count == route.steps.count {
                for index in route.steps.indices where old.steps[index].service == route.steps[index].service {
                    delta.steps[index].calls -= old.steps[index].calls
                    delta.steps[index].succeeded -= old.steps[index].succeeded
                    delta.steps[index].errors -= old.steps[index].errors
                    delta.steps[index].retries -= old.steps[index].retries
                    delta.steps[index].latency = Self.minus(route.steps[index].latency, old.steps[index].latency)
                }
            }
            result.routes[name] = delta
        }
        return result
    }

    /// Sums intervals of several routers.
    mutating func add(_ other: RouterStats) {
        for (name, route) in other.routes {
            guard var mine = self.routes[name] else {
                self.routes[name] = route
                continue
            }
            mine.processed += route.processed
            mine.sources.merge(route.sources, uniquingKeysWith: +)
            mine.from = Array(Set(mine.from + route.from)).sorted()
            mine.errors += route.errors
            mine.inflight += route.inflight
            mine.asyncDropped += route.asyncDropped
            mine.latency = Self.plus(mine.latency, route.latency)
            if mine.steps.count == route.steps.count {
                for index in mine.steps.indices {
                    mine.steps[index].calls += route.steps[index].calls
                    mine.steps[index].succeeded += route.steps[index].succeeded
                    mine.steps[index].errors += route.steps[index].errors
                    mine.steps[index].retries += route.steps[index].retries
                    mine.steps[index].latency = Self.plus(mine.steps[index].latency, route.steps[index].latency)
                }
            }
            self.routes[name] = mine
        }
    }

    /// Bucket by bucket, never below zero: a router that restarted has smaller cumulative counts
    /// than its last snapshot, and a negative rate would mean nothing.
    private static func minus(_ a: [Int64], _ b: [Int64]) -> [Int64] {
        zip(a, b).map { max(0, $0 - $1) }
    }

    /// Bucket by bucket.
    private static func plus(_ a: [Int64], _ b: [Int64]) -> [Int64] {
        zip(a, b).map { $0 + $1 }
    }
}
