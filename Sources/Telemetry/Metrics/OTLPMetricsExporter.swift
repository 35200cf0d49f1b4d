import AsyncHTTPClient
public import CoreMetrics
import Foundation
public import Logging
public import NIOCore
public import ServiceLifecycle
public import SkyLib
import Synchronization

/// A swift-metrics backend that pushes every instrument to an OpenTelemetry collector over
/// OTLP/HTTP (`POST /v1/metrics`, `application/x-protobuf`): the same collector, headers and
/// retries as the spans (``OTLPExporter``).
///
/// Instruments keep cumulative values in memory (an atomic add per count, a short lock per
/// histogram record); ``run()`` exports all of them every ``interval`` and once more on
/// graceful shutdown, so a collector sees what a Prometheus scrape of `/metrics` would. A
/// failed export is counted (`otlp-metrics-export-errors`) and not retried past the spans'
/// policy: the next export carries the cumulative values anyway. Besides swift-metrics'
/// instruments it exports every `/debug/vars` counter as the gauge `skynet_var{name}`, as
/// `/metrics` shows them.
public final class OTLPMetricsExporter: MetricsFactory, Service, Sendable {
    /// Where exports go (the full URL, `…/v1/metrics`).
    public let endpoint: OTLPEndpoint
    /// The resource's `service.name`.
    public let serviceName: String
    /// Time between exports (`OTEL_METRIC_EXPORT_INTERVAL`, 60 s by default as in the
    /// OpenTelemetry SDKs).
    public let interval: Duration
    private let instance: String
    private let host: String
    private let start = Date()
    private let instruments = Mutex<[InstrumentKey: any OTLPInstrument]>([:])
    /// The `/debug/vars` counters exported beside the instruments.
    private let vars: @Sendable () -> [String: Int64]
    /// Exports the collector took (`otlp-metrics-exports` once the node includes it).
    public let exports = CounterCell()
    /// Exports that failed (`otlp-metrics-export-errors`).
    public let failures = CounterCell()
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    /// Creates an `OTLPMetricsExporter` from its parts.
    /// - Parameters:
    ///   - endpoint: the metrics URL (``OTLPEndpoint/resolveMetrics(flag:environment:)``).
    ///   - host: the resource's `host.name` (this machine's name unless given).
    ///   - instance: the resource's `service.instance.id` (the node id).
    ///   - vars: the counters to export as `skynet_var` (`Counters.snapshot`); none unless given.
    ///   - eventLoopGroup: where the collector connection runs (the node's loops).
    public init(
        endpoint: OTLPEndpoint, serviceName: String, instance: String, host: String? = nil, interval: Duration = .seconds(60),
        vars: @escaping @Sendable () -> [String: Int64] = { [:] }, eventLoopGroup: any EventLoopGroup, logger: Logger
    ) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.instance = instance
        self.host = host ?? ProcessInfo.processInfo.hostName
        self.interval = interval
        self.vars = vars
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    // MARK: MetricsFactory

    /// A cumulative sum, shared by every part that counts the same series.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.instrument(label, dimensions) { OTLPSum() }
    }

    /// A cumulative sum of fractional amounts.
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        self.instrument(label, dimensions) { OTLPSum() }
    }

    /// A value that goes up and down, exported as an OTLP gauge.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        self.instrument(label, dimensions) { OTLPGauge() }
    }

    /// A histogram of recorded values (`aggregate`), or the last value as a gauge.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            return self.instrument(label, dimensions) { OTLPHistogram(bounds: PrometheusFactory.valueBuckets, seconds: false) }
        }
        return self.instrument(label, dimensions) { OTLPGauge() }
    }

    /// A histogram of durations in seconds, in ``SkyMetric/durationBuckets``.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        self.instrument(label, dimensions) { OTLPHistogram(bounds: SkyMetric.durationBuckets.map(\.seconds), seconds: true) }
    }

    /// Forgets the series: the next export leaves it out.
    public func destroyCounter(_ handler: any CounterHandler) { self.forget(handler) }
    /// Forgets the series.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { self.forget(handler) }
    /// Forgets the series.
    public func destroyMeter(_ handler: any MeterHandler) { self.forget(handler) }
    /// Forgets the series.
    public func destroyRecorder(_ handler: any RecorderHandler) { self.forget(handler) }
    /// Forgets the series.
    public func destroyTimer(_ handler: any TimerHandler) { self.forget(handler) }

    /// The instrument for `label` and `dimensions`: the existing one when it is of the kind
    /// asked for (two parts counting the same series share it, as in Prometheus).
    private func instrument<Instrument: OTLPInstrument>(_ label: String, _ dimensions: [(String, String)], make: () -> Instrument) -> Instrument {
        let key = InstrumentKey(name: label, dimensions: dimensions)
        return self.instruments.withLock { instruments in
            if let existing = instruments[key] as? Instrument { return existing }
            let made = make()
            instruments[key] = made
            return made
        }
    }

    private func forget(_ handler: AnyObject) {
        self.instruments.withLock { instruments in
            if let key = instruments.first(where: { $0.value === handler })?.key { instruments[key] = nil }
        }
    }

    // MARK: Export

    /// Every instrument's value now and every `/debug/vars` counter, sorted by name.
    func points() -> [MetricPoint] {
        let instruments = self.instruments.withLock { $0 }
        var points = instruments.map { key, instrument in
            let metric = SkyMetric.named(key.name)
            return MetricPoint(
                name: key.name, help: metric?.help ?? "", unit: instrument.unit, attributes: key.dimensions.map { ($0.key, $0.value) }, value: instrument.value
            )
        }
        for (name, value) in self.vars() {
            points.append(
                MetricPoint(name: "skynet_var", help: "Every /debug/vars counter, by name.", unit: "", attributes: [("name", name)], value: .gauge(Double(value)))
            )
        }
        // By name: the request groups a name's points into one metric; their order within it
        // carries nothing.
        return points.sorted { $0.name < $1.name }
    }

    /// Sends one export of every instrument.
    func export(using client: HTTPClient) async {
        let body = OTLPMetricsRequest(points: self.points(), serviceName: self.serviceName, instance: self.instance, host: self.host, start: self.start, now: Date()).bytes
        if let problem = await OTLPExporter.post(body, to: self.endpoint, using: client, logger: self.logger, retried: {}) {
            self.failures.add()
            self.logger.debug("OTLP metrics export to \(self.endpoint.url) failed (\(problem)); the next export carries the totals")
        } else {
            self.exports.add()
        }
    }

    public func run() async throws {
        let client = OTLPExporter.makeClient(eventLoopGroup: self.eventLoopGroup)
        // The wait ends at graceful shutdown (not after the rest of the interval): the last
        // export then runs after the loop, so a stop sends the final totals.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
            await self.export(using: client)
        }
        await self.export(using: client)
        try? await client.shutdown()
    }
}

/// One series: a name and its dimensions in the order given.
struct InstrumentKey: Hashable, Sendable {
    var name: String
    var dimensions: [Pair]

    struct Pair: Hashable, Sendable {
        var key: String
        var value: String
    }

    init(name: String, dimensions: [(String, String)]) {
        self.name = name
        self.dimensions = dimensions.map { Pair(key: $0.0, value: $0.1) }
    }
}

/// What every instrument of the exporter gives an export.
protocol OTLPInstrument: AnyObject, Sendable {
    var value: MetricPoint.Value { get }
    var unit: String { get }
}

/// A counter: a cumulative sum (whole counts in an atomic, fractions under a lock).
final class OTLPSum: OTLPInstrument, CounterHandler, FloatingPointCounterHandler {
    private let whole = Atomic<Int64>(0)
    private let fraction = Mutex<Double>(0)

    func increment(by amount: Int64) { self.whole.wrappingAdd(amount, ordering: .relaxed) }
    func increment(by amount: Double) { self.fraction.withLock { $0 += amount } }
    func reset() {
        self.whole.store(0, ordering: .relaxed)
        self.fraction.withLock { $0 = 0 }
    }

    var value: MetricPoint.Value { .sum(Double(self.whole.load(ordering: .relaxed)) + self.fraction.withLock { $0 }) }
    var unit: String { "" }
}

/// A meter or a plain recorder: the value now.
final class OTLPGauge: OTLPInstrument, MeterHandler, RecorderHandler {
    private let current = Mutex<Double>(0)

    func set(_ value: Int64) { self.current.withLock { $0 = Double(value) } }
    func set(_ value: Double) { self.current.withLock { $0 = value } }
    func increment(by amount: Double) { self.current.withLock { $0 += amount } }
    func decrement(by amount: Double) { self.current.withLock { $0 -= amount } }
    func record(_ value: Int64) { self.set(value) }
    func record(_ value: Double) { self.set(value) }

    var value: MetricPoint.Value { .gauge(self.current.withLock { $0 }) }
    var unit: String { "" }
}

/// A timer or an aggregating recorder: explicit-bucket counts, sum, count, min and max.
final class OTLPHistogram: OTLPInstrument, TimerHandler, RecorderHandler {
    private struct State {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
        var min: Double?
        var max: Double?
    }

    private let bounds: [Double]
    /// Durations in seconds (a timer), or plain values.
    private let seconds: Bool
    private let state: Mutex<State>

    init(bounds: [Double], seconds: Bool) {
        self.bounds = bounds
        self.seconds = seconds
        self.state = Mutex(State(counts: Array(repeating: 0, count: bounds.count + 1)))
    }

    func recordNanoseconds(_ duration: Int64) { self.observe(Double(duration) / 1e9) }
    func record(_ value: Int64) { self.observe(Double(value)) }
    func record(_ value: Double) { self.observe(value) }

    private func observe(_ value: Double) {
        // Buckets are upper-inclusive, as in Prometheus and OTLP.
        let bucket = self.bounds.firstIndex { value <= $0 } ?? self.bounds.count
        self.state.withLock { state in
            state.counts[bucket] += 1
            state.sum += value
            state.count += 1
            state.min = Swift.min(state.min ?? value, value)
            state.max = Swift.max(state.max ?? value, value)
        }
    }

    var value: MetricPoint.Value {
        let state = self.state.withLock { $0 }
        return .histogram(bounds: self.bounds, counts: state.counts, sum: state.sum, count: state.count, min: state.min, max: state.max)
    }

    var unit: String { self.seconds ? "s" : "" }
}
