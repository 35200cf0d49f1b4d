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
}
