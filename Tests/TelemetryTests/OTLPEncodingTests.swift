import Foundation
import Logging
import SkyLib
import SkyTestSupport
import Testing

@testable import Telemetry

/// The wire format by hand-checked bytes; the end-to-end test (`OTLPExportTests`) decodes
/// real exports with the official definitions.
struct OTLPEncodingTests {
    @Test func varintsFixedAndLengthDelimitedFieldsFollowTheWireFormat() {
        var writer = ProtobufWriter()
        writer.varint(1, 150)  // the protocol-buffers guide's own example: 08 96 01
        writer.fixed64(7, 1)
        writer.string(5, "hi")
        writer.varint(6, 0)  // defaults are not written
        #expect(writer.buffer == [0x08, 0x96, 0x01, 0x39, 1, 0, 0, 0, 0, 0, 0, 0, 0x2A, 2, 0x68, 0x69])
        var outer = ProtobufWriter()
        outer.message(1) { $0.varint(1, 150) }
        #expect(outer.buffer == [0x0A, 3, 0x08, 0x96, 0x01])
    }

    @Test func idsBecomeTheirBytesAndOtherTraceIDsAStableHash() {
        #expect(OTLPTraceRequest.bytes(hex: "0af7651916cd43dd8448eb211c80319c", count: 16).first == 0x0A)
        #expect(OTLPTraceRequest.bytes(hex: "b7ad6b7169203331", count: 8) == [0xB7, 0xAD, 0x6B, 0x71, 0x69, 0x20, 0x33, 0x31])
        let custom = OTLPTraceRequest.bytes(hex: "my-own-trace", count: 16)
        #expect(custom.count == 16 && custom == OTLPTraceRequest.bytes(hex: "my-own-trace", count: 16))
    }

    @Test func theFlagWinsThenTheTracesVariableThenTheBase() throws {
        let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/custom"]
        #expect(try OTLPEndpoint.resolve(flag: "http://flag:4318", environment: environment)?.url == "http://flag:4318/v1/traces")
        #expect(try OTLPEndpoint.resolve(flag: nil, environment: environment)?.url == "http://traces:4318/custom")
        #expect(try OTLPEndpoint.resolve(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/"])?.url == "http://base:4318/v1/traces")
        #expect(try OTLPEndpoint.resolve(flag: nil, environment: [:]) == nil)
        #expect(try OTLPEndpoint.resolve(flag: "http://flag:4318", environment: ["OTEL_SDK_DISABLED": "true"]) == nil)
        let headers = try OTLPEndpoint.resolve(flag: "http://c:4318", environment: ["OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x=1"])?.headers
        #expect(headers == [.init(name: "api-key", value: "a b"), .init(name: "x", value: "1")])
        #expect(throws: SkyError.self) { try OTLPEndpoint.resolve(flag: "127.0.0.1:4318", environment: [:]) }
        #expect(throws: SkyError.self) { try OTLPEndpoint.resolve(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]) }
    }

    @Test func aFullExporterDropsAndCountsInsteadOfGrowing() {
        let counters = Counters()
        let exporter = OTLPExporter(
            endpoint: OTLPEndpoint(url: "http://127.0.0.1:9/v1/traces"), serviceName: "t", counters: counters, capacity: 2, eventLoopGroup: TestIO.eventLoopGroup,
            logger: .init(label: "t")
        )
        let span = Span(traceID: Identifiers.traceID(), spanID: Identifiers.spanID(), parentID: nil, kind: .route, name: "r", route: "r", recorder: "n", host: "h", start: Date(), duration: 0.001)
        for _ in 0..<5 { exporter.export(span) }
        #expect(exporter.pending == 2)
        #expect(counters.snapshot()["otlp-spans-dropped"] == 3)
    }
}
