import Foundation
import Logging
import SkyLib
import SkyTestSupport
import Testing

@testable import Telemetry

/// When the exporter sends a batch again: only for the answers OTLP/HTTP calls retryable, after
/// the collector's `Retry-After` (capped) or a doubling pause. The end-to-end test
/// (`OTLPExportTests`) has a real receiver answer 429 and 503.
struct OTLPExporterTests {
    @Test func onlyThrottlingAnswersAreRetried() {
        for status in [429, 502, 503, 504] {
            #expect(OTLPExporter.retryPause(status: status, retryAfter: nil, retry: 0) != nil, "\(status)")
        }
        for status in [400, 401, 404, 413, 415, 500] {
            #expect(OTLPExporter.retryPause(status: status, retryAfter: "1", retry: 0) == nil, "\(status)")
        }
    }

    @Test func retryAfterWinsUpToTenSecondsElseThePauseDoubles() {
        #expect(OTLPExporter.retryPause(status: 503, retryAfter: "2", retry: 0) == .seconds(2))
        #expect(OTLPExporter.retryPause(status: 503, retryAfter: " 0 ", retry: 2) == .zero)
        #expect(OTLPExporter.retryPause(status: 429, retryAfter: "3600", retry: 0) == .seconds(10))
        // An HTTP date is not honoured: the doubling pause instead.
        #expect(OTLPExporter.retryPause(status: 429, retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT", retry: 1) == .seconds(2))
        #expect((0..<6).map { OTLPExporter.retryPause(status: 502, retryAfter: nil, retry: $0) } == [1, 2, 4, 8, 8, 8].map { .seconds($0) })
    }

    /// The stated bounds: 2,048 spans wait for the collector (the 2,049th is dropped and
    /// counted), and a throttled batch is sent again at most 3 times (`OTLPExportTests` shows
    /// 3 passing and a fourth refusal dropping it, against a real receiver).
    @Test func theBufferHoldsTheStatedTwoThousandFortyEightAndThreeRetries() {
        #expect(OTLPExporter.maxRetries == 3)
        let counters = Counters()
        let exporter = OTLPExporter(endpoint: OTLPEndpoint(url: "http://127.0.0.1:4318/v1/traces"), serviceName: "test", counters: counters, eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "test"))
        #expect(exporter.capacity == 2048)
        let span = Span(traceID: "t", spanID: "s", parentID: nil, kind: .route, name: "r", route: "r", recorder: "me", host: "h", start: Date(), duration: 0.001)
        for _ in 0..<2048 { exporter.export(span) }
        #expect(exporter.pending == 2048 && counters.value("otlp-spans-dropped") == 0)
        exporter.export(span)
        #expect(exporter.pending == 2048 && counters.value("otlp-spans-dropped") == 1)
    }
}
