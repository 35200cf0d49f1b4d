public import CoreMetrics
import Prometheus
public import SkyLib

/// The metrics backend `/metrics` is scraped from: swift-metrics instruments kept in a
/// Prometheus registry and written in its text format.
///
/// Not swift-prometheus's own factory: that one registers every family without help text, and
/// promtool (and scrapers that lint) want `# HELP` on each. Ours looks the help up in
/// ``SkyMetric`` (a label of someone else's library gets a help line naming it), and gives
/// durations ``SkyMetric/durationBuckets``.
public struct PrometheusBackend: MetricsBackend {
    private let registry: PrometheusCollectorRegistry
    /// Makes the instruments (``MetricsBackend/factory``).
    public let factory: any MetricsFactory

    /// Creates an empty `PrometheusBackend`.
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.factory = PrometheusFactory(registry: registry)
    }

    public func scrapeText() -> [UInt8] {
        self.registry.emitToBuffer()
    }
}

/// swift-metrics' factory over one registry, with help texts and buckets from ``SkyMetric``.
struct PrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    /// The same help for a name every time: the registry refuses a family's second help text.
    private func descriptor(_ label: String) -> MetricNameDescriptor {
        // The registry traps on an empty name; a label is the whole name (unit and `_total` in it).
        let name = label.isEmpty ? "unnamed" : label
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: SkyMetric.named(name)?.help ?? "Recorded through swift-metrics as \(name).")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.registry.makeCounter(descriptor: self.descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        self.registry.makeCounter(descriptor: self.descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        self.registry.makeGauge(descriptor: self.descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return self.registry.makeGauge(descriptor: self.descriptor(label), labels: dimensions) }
        return self.registry.makeValueHistogram(descriptor: self.descriptor(label), labels: dimensions, buckets: Self.valueBuckets)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        self.registry.makeDurationHistogram(descriptor: self.descriptor(label), labels: dimensions, buckets: SkyMetric.durationBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { self.registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { self.registry.unregisterCounter(counter) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { self.registry.unregisterGauge(gauge) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: self.registry.unregisterGauge(gauge)
        case let histogram as ValueHistogram: self.registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { self.registry.unregisterDurationHistogram(histogram) }
    }

    /// Buckets for recorded values (nothing of ours records values; a library's might).
    static let valueBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000]
}
