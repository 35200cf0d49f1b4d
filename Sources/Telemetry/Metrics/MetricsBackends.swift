public import CoreMetrics
public import SkyLib

/// The backends one node records into: one scraped at `/metrics`, and at most one that pushes
/// (OTLP). Each instrument records into both, through swift-metrics' multiplexer.
public struct MetricsBackends: MetricsBackend {
    /// Makes the instruments (``MetricsBackend/factory``).
    public let factory: any MetricsFactory
    private let scraped: any MetricsBackend

    /// Creates the backends: `scraped` alone, or with `pushed` beside it.
    public init(scraped: any MetricsBackend, pushed: (any MetricsFactory)?) {
        self.scraped = scraped
        self.factory = pushed.map { MultiplexMetricsHandler(factories: [scraped.factory, $0]) } ?? scraped.factory
    }

    public func scrapeText() -> [UInt8] {
        self.scraped.scrapeText()
    }
}
