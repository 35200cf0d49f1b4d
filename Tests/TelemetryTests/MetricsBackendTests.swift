import CoreMetrics
import Foundation
import Logging
import SkyLib
import SkyTestSupport
import Testing

@testable import Telemetry

/// The node's metrics backends, fed only through swift-metrics as the libraries feed them:
/// Prometheus text with HELP on every family (promtool accepts it), OTLP points with the same
/// values, and both at once through the multiplexer.
struct MetricsBackendTests {
    /// What a route records for two requests, one failed, and one call (13 ms).
    static func record(into factory: any MetricsFactory) {
        CoreMetrics.Counter(label: SkyMetric.routeRequests.name, dimensions: [("route", "r"), ("outcome", "ok")], factory: factory).increment(by: 2)
        CoreMetrics.Counter(label: SkyMetric.routeRequests.name, dimensions: [("route", "r"), ("outcome", "error")], factory: factory).increment()
        let inflight = Meter(label: SkyMetric.routeInflight.name, dimensions: [("route", "r")], factory: factory)
        inflight.increment(by: 3)
        inflight.decrement(by: 1)
        CoreMetrics.Timer(label: SkyMetric.stepDuration.name, dimensions: [("route", "r"), ("service", "s")], factory: factory)
            .recordNanoseconds(Duration.milliseconds(13).nanoseconds)
    }

    @Test func prometheusTextHasHelpTypeAndTheRecordedValues() async throws {
        let backend = PrometheusBackend()
        Self.record(into: backend.factory)
        let text = String(decoding: backend.scrapeText(), as: UTF8.self)
        for metric in [SkyMetric.routeRequests, .routeInflight, .stepDuration] {
            #expect(text.contains("# HELP \(metric.name) \(metric.help)\n"), "\(metric.name) has no HELP: \(text)")
        }
        #expect(text.contains("# TYPE skynet_route_requests_total counter\n"))
        #expect(text.contains(#"skynet_route_requests_total{route="r",outcome="ok"} 2"#))
        #expect(text.contains(#"skynet_route_requests_total{route="r",outcome="error"} 1"#))
        #expect(text.contains(#"skynet_route_inflight{route="r"} 2.0"#))
        // 13 ms lands in the 25 ms bucket and every one above it, not in the 10 ms one.
        #expect(text.contains(#"skynet_step_duration_seconds_bucket{route="r",service="s",le="0.01"} 0"#))
        #expect(text.contains(#"skynet_step_duration_seconds_bucket{route="r",service="s",le="0.025"} 1"#))
        #expect(text.contains(#"skynet_step_duration_seconds_count{route="r",service="s"} 1"#))
        // A label of someone else's library gets a help line too (promtool wants one on each).
        CoreMetrics.Counter(label: "other_library_calls_total", factory: backend.factory).increment()
        let more = String(decoding: backend.scrapeText(), as: UTF8.self)
        #expect(more.contains("# HELP other_library_calls_total Recorded through swift-metrics as other_library_calls_total.\n"))
        let promtool = "/usr/bin/promtool"
        if requirement(FileManager.default.isExecutableFile(atPath: promtool), test: "prometheusTextHasHelpTypeAndTheRecordedValues", "promtool (Debian's prometheus package)") {
            let (status, said) = try await Programs.run(promtool, ["check", "metrics"], input: Data(more.utf8))
            #expect(status == 0, "promtool: \(String(decoding: said, as: UTF8.self))")
        }
    }

    @Test func otlpPointsHoldTheSameValues() throws {
        let exporter = OTLPMetricsExporter(
            endpoint: OTLPEndpoint(url: "http://127.0.0.1:9/v1/metrics"), serviceName: "t", instance: "n", vars: { ["route.r-processed": 2] },
            eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "t")
        )
        Self.record(into: exporter)
        let points = exporter.points()
        func point(_ name: String, _ attributes: [String: String]) -> MetricPoint? {
            points.first { $0.name == name && Dictionary(uniqueKeysWithValues: $0.attributes) == attributes }
        }
        #expect(point(SkyMetric.routeRequests.name, ["route": "r", "outcome": "ok"])?.value == .sum(2))
        #expect(point(SkyMetric.routeRequests.name, ["route": "r", "outcome": "error"])?.value == .sum(1))
        #expect(point(SkyMetric.routeInflight.name, ["route": "r"])?.value == .gauge(2))
        #expect(point("skynet_var", ["name": "route.r-processed"])?.value == .gauge(2))
        let duration = try #require(point(SkyMetric.stepDuration.name, ["route": "r", "service": "s"]))
        guard case .histogram(let bounds, let counts, let sum, let count, let min, let max) = duration.value else {
            Issue.record("not a histogram: \(duration.value)")
            return
        }
        #expect(bounds == SkyMetric.durationBuckets.map(\.seconds) && counts.count == bounds.count + 1)
        // One observation, in the bucket whose bound is the first at or above 0.013 s.
        #expect(counts.reduce(0, +) == 1 && counts[bounds.firstIndex(of: 0.025)!] == 1)
        #expect(count == 1 && abs(sum - 0.013) < 1e-9 && min == max && duration.unit == "s")
        // The encoding is checked against the official definitions end to end (OTLPExportTests);
        // here, that it is a non-empty message of one resource.
        let bytes = OTLPMetricsRequest(points: points, serviceName: "t", instance: "n", host: "h", start: Date(), now: Date()).bytes
        #expect(bytes.first == 0x0A && bytes.count > 200)
    }

    @Test func bothBackendsRecordThroughTheMultiplexer() {
        let exporter = OTLPMetricsExporter(
            endpoint: OTLPEndpoint(url: "http://127.0.0.1:9/v1/metrics"), serviceName: "t", instance: "n",
            eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "t")
        )
        let backends = MetricsBackends(scraped: PrometheusBackend(), pushed: exporter)
        Self.record(into: backends.factory)
        #expect(String(decoding: backends.scrapeText(), as: UTF8.self).contains(#"skynet_route_requests_total{route="r",outcome="ok"} 2"#))
        #expect(exporter.points().contains { $0.name == SkyMetric.routeRequests.name && $0.value == .sum(2) })
    }

    @Test func theMetricsEndpointFollowsTheTracesRulesWithTheMetricsVariables() throws {
        #expect(try OTLPEndpoint.resolveMetrics(flag: "http://c:4318", environment: [:])?.url == "http://c:4318/v1/metrics")
        #expect(try OTLPEndpoint.resolveMetrics(flag: "http://c:4318/v1/traces", environment: [:])?.url == "http://c:4318/v1/metrics")
        #expect(try OTLPEndpoint.resolveMetrics(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"])?.url == "http://c:4318/v1/metrics")
        #expect(try OTLPEndpoint.resolveMetrics(flag: nil, environment: ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/x"])?.url == "http://m:9/x")
        #expect(try OTLPEndpoint.resolveMetrics(flag: "http://c:4318", environment: ["OTEL_METRICS_EXPORTER": "none"]) == nil)
        #expect(try OTLPEndpoint.resolveMetrics(flag: nil, environment: [:]) == nil)
        #expect(throws: SkyError.self) { try OTLPEndpoint.resolveMetrics(flag: "c:4318", environment: [:]) }
        // The traces URL is unchanged by the shared path rule.
        #expect(try OTLPEndpoint.resolve(flag: "http://c:4318/v1/metrics", environment: [:])?.url == "http://c:4318/v1/traces")
    }
}
