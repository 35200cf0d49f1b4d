import CoreMetrics
import SkyLib
import RouteModel
import Synchronization

/// The counters and latency histograms of one route and its steps, made once per route and
/// kept, so a request counts with atomic adds and histogram records only: no counter names
/// built, no global lookup per request.
///
/// `/debug/vars` (original Skynet names): `route.NAME-processed`, `-errors`, `-inflight`,
/// `-interrupted` (cut short by a stop past the drain limit, neither processed nor failed),
/// `-async-processed`, `-async-errors`, `-async-dropped`; `step.SERVICE-calls`, `-processed`,
/// `-errors`, `-retries`, `-inflight` (a service's counters are shared by every route calling it).
///
/// swift-metrics, into the backend the node chose (``SkyMetric`` names them; `/metrics` and
/// OTLP show them): `skynet_route_requests_total{route,outcome}`,
/// `skynet_route_duration_seconds{route}`, `skynet_route_inflight{route}`,
/// `skynet_step_calls_total{route,service,outcome}`, `skynet_step_retries_total{route,service}`,
/// `skynet_step_duration_seconds{route,service}` (one attempt), `skynet_async_dropped_total{route}`.
final class RouteInstruments: Sendable {
    /// The route's name, in every counter's name and label.
    let route: String
    /// Requests answered (`route.NAME-processed`) and failed (`-errors`): the original
    /// Skynet's names, kept for `/debug/vars`.
    let processed: CounterCell
    let errors: CounterCell
    /// Requests cut short by a stop (neither processed nor failed).
    let interruptions: CounterCell
    /// Requests running now.
    let inflight: CounterCell
    /// Out-of-band steps that ended well, failed, or were dropped because the queue was full.
    let asyncProcessed: CounterCell
    let asyncErrors: CounterCell
    let asyncDropped: CounterCell
    /// The same counts through swift-metrics, as one counter with an `outcome` label, and the
    /// in-flight gauge: made once here, so a request records without looking a metric up.
    let succeeded: CoreMetrics.Counter
    let failed: CoreMetrics.Counter
    let dropped: CoreMetrics.Counter
    let inflightGauge: Meter
    /// Latency for the metrics backend and for `/debug/stats` (the finer histogram the
    /// dashboard subtracts snapshots of).
    let duration: CoreMetrics.Timer
    let latency = LatencyHistogram()
    /// One per service call, nested ones too, in file order (``RouteStep/slot``).
    let steps: [StepInstruments]
    /// Requests by the initiator that made them (`meta.source`), in ``sourceKinds`` order:
    /// the dashboard's edges from initiators to routes.
    let bySource: [CounterCell]
    /// The route's `from:` sources as the dashboard labels them (`files drop/text/*.json` …).
    let declaredSources: [String]

    /// The initiator kinds counted apart; anything else counts as `other`.
    static let sourceKinds = ["http", "files", "csv", "stomp", "other"]

    init(route: Route, counters: Counters) {
        let name = route.name
        let factory = counters.backend.factory
        self.route = name
        self.processed = counters.cell("route.\(name)-processed")
        self.errors = counters.cell("route.\(name)-errors")
        self.interruptions = counters.cell("route.\(name)-interrupted")
        self.inflight = counters.cell("route.\(name)-inflight")
        self.asyncProcessed = counters.cell("route.\(name)-async-processed")
        self.asyncErrors = counters.cell("route.\(name)-async-errors")
        self.asyncDropped = counters.cell("route.\(name)-async-dropped")
        self.succeeded = CoreMetrics.Counter(label: SkyMetric.routeRequests.name, dimensions: [("route", name), ("outcome", "ok")], factory: factory)
        self.failed = CoreMetrics.Counter(label: SkyMetric.routeRequests.name, dimensions: [("route", name), ("outcome", "error")], factory: factory)
        self.dropped = CoreMetrics.Counter(label: SkyMetric.asyncDropped.name, dimensions: [("route", name)], factory: factory)
        self.inflightGauge = Meter(label: SkyMetric.routeInflight.name, dimensions: [("route", name)], factory: factory)
        self.duration = CoreMetrics.Timer(label: SkyMetric.routeDuration.name, dimensions: [("route", name)], factory: factory)
        self.steps = route.calls.map { StepInstruments(route: name, service: $0.service, counters: counters) }
        self.bySource = Self.sourceKinds.map { _ in CounterCell() }
        self.declaredSources = route.sources.map(\.description)
    }

    /// Whether these instruments still fit `route` (a reloaded route may have other steps).
    func fits(_ route: Route) -> Bool {
        // Per request: no walk of the steps, no allocation.
        route.sources.count == self.declaredSources.count && route.callServices.count == self.steps.count && zip(route.callServices, self.steps).allSatisfy { $0 == $1.service }
    }

    func started(source: String?, count: Int = 1) {
        self.inflight.add(Int64(count))
        self.inflightGauge.increment(by: Double(count))
        let index: Int
        switch source {
        case "http": index = 0
        case "files": index = 1
        case "csv": index = 2
        case "stomp": index = 3
        default: index = 4
        }
        self.bySource[index].add(Int64(count))
    }

    func finished(after duration: Duration, succeeded: Bool) {
        self.inflight.add(-1)
        self.inflightGauge.decrement(by: 1)
        self.duration.recordNanoseconds(duration.nanoseconds)
        self.latency.record(duration)
        if succeeded {
            self.processed.add()
            self.succeeded.increment()
        } else {
            self.errors.add()
            self.failed.increment()
        }
    }

    /// A batch's requests ended: `succeeded` answered and `failed` failed, each counted at
    /// `each` (the batch's mean), with one add per counter rather than one per request. The
    /// metrics backend's timer has no count, so it takes `each` once per request.
    func finished(succeeded: Int, failed: Int, each: Duration) {
        let total = succeeded + failed
        guard total > 0 else { return }
        self.inflight.add(-Int64(total))
        self.inflightGauge.decrement(by: Double(total))
        for _ in 0..<total { self.duration.recordNanoseconds(each.nanoseconds) }
        self.latency.record(each, count: Int64(total))
        if succeeded > 0 {
            self.processed.add(Int64(succeeded))
            self.succeeded.increment(by: Int64(succeeded))
        }
        if failed > 0 {
            self.errors.add(Int64(failed))
            self.failed.increment(by: Int64(failed))
        }
    }

    /// A request cut short by a stop past the drain limit: out of flight, counted apart from
    /// failures (it is left to run again) and out of the latency figures.
    func interrupted() {
        self.inflight.add(-1)
        self.inflightGauge.decrement(by: 1)
        self.interruptions.add()
    }

    /// Cumulative counts and latency, for `/debug/stats` (the dashboard subtracts snapshots).
    var stats: JSONValue {
        [
            "route": .string(self.route),
            "processed": .int(self.processed.value),
            "errors": .int(self.errors.value),
            "inflight": .int(self.inflight.value),
            "asyncDropped": .int(self.asyncDropped.value),
            "latency": LatencyHistogram.sparse(self.latency.snapshot()),
            "steps": .array(self.steps.map(\.stats)),
            "sources": .object(Dictionary(uniqueKeysWithValues: zip(Self.sourceKinds, self.bySource.map { JSONValue.int($0.value) }))),
            "from": .array(self.declaredSources.map(JSONValue.string)),
        ]
    }

    func asyncDroppedOne() {
        self.asyncDropped.add()
        self.dropped.increment()
    }
}

/// The counters and latency histogram of one step of one route.
final class StepInstruments: Sendable {
    /// The service the step calls.
    let service: String
    /// Attempts started, ended well, failed, retried, and running now, per service
    /// (`step.SERVICE-…`, shared by every route calling it).
    let calls: CounterCell
    let processed: CounterCell
    let errors: CounterCell
    let retries: CounterCell
    let inflight: CounterCell
    /// The same through swift-metrics, per route and service.
    let succeeded: CoreMetrics.Counter
    let failed: CoreMetrics.Counter
    let retried: CoreMetrics.Counter
    /// One attempt's latency, for the metrics backend and for `/debug/stats`.
    let duration: CoreMetrics.Timer
    let latency = LatencyHistogram()
    /// This step's own counts (the cells above are shared by every route calling the service).
    let ownCalls = CounterCell()
    let ownErrors = CounterCell()
    let ownSucceeded = CounterCell()
    let ownRetries = CounterCell()

    init(route: String, service: String, counters: Counters) {
        let factory = counters.backend.factory
        let labels = [("route", route), ("service", service)]
        self.service = service
        self.calls = counters.cell("step.\(service)-calls")
        self.processed = counters.cell("step.\(service)-processed")
        self.errors = counters.cell("step.\(service)-errors")
        self.retries = counters.cell("step.\(service)-retries")
        self.inflight = counters.cell("step.\(service)-inflight")
        self.succeeded = CoreMetrics.Counter(label: SkyMetric.stepCalls.name, dimensions: labels + [("outcome", "ok")], factory: factory)
        self.failed = CoreMetrics.Counter(label: SkyMetric.stepCalls.name, dimensions: labels + [("outcome", "error")], factory: factory)
        self.retried = CoreMetrics.Counter(label: SkyMetric.stepRetries.name, dimensions: labels, factory: factory)
        self.duration = CoreMetrics.Timer(label: SkyMetric.stepDuration.name, dimensions: labels, factory: factory)
    }

    func started() {
        self.calls.add()
        self.ownCalls.add()
        self.inflight.add()
    }

    func finished(after duration: Duration, succeeded: Bool) {
        self.inflight.add(-1)
        self.duration.recordNanoseconds(duration.nanoseconds)
        self.latency.record(duration)
        if succeeded {
            self.processed.add()
            self.ownSucceeded.add()
            self.succeeded.increment()
        } else {
            self.errors.add()
            self.ownErrors.add()
            self.failed.increment()
        }
    }

    /// A batch's calls of this step, made by ``PromptLane``: `calls` first attempts started and
    /// ended, `failed` of them failing, each counted at `each` (the batch's mean per call).
    func finished(calls: Int, failed: Int, each: Duration) {
        guard calls > 0 else { return }
        let succeeded = calls - failed
        self.calls.add(Int64(calls))
        self.ownCalls.add(Int64(calls))
        for _ in 0..<calls { self.duration.recordNanoseconds(each.nanoseconds) }
        self.latency.record(each, count: Int64(calls))
        if succeeded > 0 {
            self.processed.add(Int64(succeeded))
            self.ownSucceeded.add(Int64(succeeded))
            self.succeeded.increment(by: Int64(succeeded))
        }
        if failed > 0 {
            self.errors.add(Int64(failed))
            self.ownErrors.add(Int64(failed))
            self.failed.increment(by: Int64(failed))
        }
    }

    func retrying() {
        self.retries.add()
        self.ownRetries.add()
        self.retried.increment()
    }

    var stats: JSONValue {
        [
            "service": .string(self.service),
            "calls": .int(self.ownCalls.value),
            "errors": .int(self.ownErrors.value),
            // Finished attempts = succeeded + errors: the one denominator of an error rate
            // (calls count attempts when they start, errors when they end).
            "succeeded": .int(self.ownSucceeded.value),
            "retries": .int(self.ownRetries.value),
            "latency": LatencyHistogram.sparse(self.latency.snapshot()),
        ]
    }
}

/// Route instruments by route name, rebuilt when a route's steps change.
final class RouteInstrumentsCache: Sendable {
    private let counters: Counters
    private let byRoute = Mutex<[String: RouteInstruments]>([:])

    init(counters: Counters) {
        self.counters = counters
    }

    /// Every route's cumulative stats: the `/debug/stats` document.
    func stats() -> JSONValue {
        let all = self.byRoute.withLock { Array($0.values) }.sorted { $0.route < $1.route }
        return ["routes": .array(all.map(\.stats)), "bucketsMicroseconds": .array(LatencyHistogram.bounds.map { .double($0) })]
    }

    func instruments(for route: Route) -> RouteInstruments {
        if let existing = self.byRoute.withLock({ $0[route.name] }), existing.fits(route) { return existing }
        let made = RouteInstruments(route: route, counters: self.counters)
        self.byRoute.withLock { $0[route.name] = made }
        return made
    }
}
