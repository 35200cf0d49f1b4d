public import CoreMetrics

/// Where a process's swift-metrics instruments record: the node picks one (Prometheus, scraped
/// at `/metrics`; OTLP, pushed to a collector; or both), and the libraries make their
/// instruments from ``factory`` without knowing which.
///
/// swift-metrics is the one metrics API of the libraries, as in Hummingbird and SwiftNIO: a
/// library records, the program chooses the backend. `Counters` carries the backend so that
/// each process (and each test) has its own, rather than the process-wide `MetricsSystem`.
public protocol MetricsBackend: Sendable {
    /// Makes the instruments.
    var factory: any MetricsFactory { get }
    /// What `/metrics` shows of the recorded instruments, in the Prometheus text format; empty
    /// for a backend that is not scraped.
    func scrapeText() -> [UInt8]
}

/// Records nothing: the default of a `Counters` made without a backend (most unit tests).
public struct NoMetricsBackend: MetricsBackend {
    /// Creates a `NoMetricsBackend`.
    public init() {}

    public var factory: any MetricsFactory { NOOPMetricsHandler.instance }

    public func scrapeText() -> [UInt8] { [] }
}
