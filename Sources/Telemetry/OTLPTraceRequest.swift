import Foundation
public import SkyLib

/// An OTLP `ExportTraceServiceRequest` (opentelemetry-proto, `collector/trace/v1`) made from
/// Skynet spans, in the protocol-buffers wire format OTLP/HTTP sends as
/// `application/x-protobuf`.
///
/// Mapping: a route span is a `SERVER` span named `route NAME`, a call span a `CLIENT` span
/// named `call SERVICE`, a service span a `SERVER` span named after its service; a failed
/// span has status `ERROR` with the error as message. Skynet's own fields become `skynet.*`
/// attributes. Spans are grouped by resource: `service.name` is the process's name, or the
/// service's own for service spans (so a backend shows `uppercase` beside the router even when
/// both live in `sky run`), `service.instance.id` the recording node and `host.name` its host.
public struct OTLPTraceRequest: Sendable {
    /// The protocol-buffers encoding.
    public let bytes: [UInt8]

    /// Encodes `spans`, recorded by a process named `serviceName`.
    public init(spans: [Span], serviceName: String) {
        struct Resource: Hashable {
            var service: String
            var instance: String
            var host: String
        }
        var groups: [Resource: [Span]] = [:]
        var order: [Resource] = []
        for span in spans {
            let resource = Resource(service: span.kind == .service ? span.name : serviceName, instance: span.recorder, host: span.host)
            if groups[resource] == nil { order.append(resource) }
            groups[resource, default: []].append(span)
        }
        var writer = ProtobufWriter()
        for resource in order {
            // ExportTraceServiceRequest.resource_spans = 1
            writer.message(1) { resourceSpans in
                // ResourceSpans.resource = 1
                resourceSpans.message(1) { message in
                    message.attribute(1, "service.name", resource.service)
                    message.attribute(1, "service.instance.id", resource.instance)
                    message.attribute(1, "host.name", resource.host)
                }
                // ResourceSpans.scope_spans = 2
                resourceSpans.message(2) { scopeSpans in
                    scopeSpans.message(1) { scope in scope.string(1, "skynet") }
                    for span in groups[resource] ?? [] {
                        scopeSpans.message(2) { Self.encode(span, into: &$0) }
                    }
                }
            }
        }
        self.bytes = writer.buffer
    }

    /// Span (`trace/v1/trace.proto`).
    private static func encode(_ span: Span, into message: inout ProtobufWriter) {
        message.bytes(1, Self.bytes(hex: span.traceID, count: 16))
        message.bytes(2, Self.bytes(hex: span.spanID, count: 8))
        if let parentID = span.parentID { message.bytes(4, Self.bytes(hex: parentID, count: 8)) }
        switch span.kind {
        case .route: message.string(5, "route \(span.name)")
        case .call: message.string(5, "call \(span.name)")
        case .service: message.string(5, span.name)
        }
        // SpanKind: SERVER = 2, CLIENT = 3.
        message.varint(6, span.kind == .call ? 3 : 2)
        let start = UInt64(max(0, span.start.timeIntervalSince1970 * 1e9))
        message.fixed64(7, start)
        message.fixed64(8, start + UInt64(max(0, span.duration * 1e9)))
        message.attribute(9, "skynet.route", span.route)
        message.attribute(9, "skynet.kind", span.kind.rawValue)
        if let instance = span.instance { message.attribute(9, "skynet.instance", instance) }
        if let address = span.address { message.attribute(9, "server.address", address) }
        if span.kind == .call { message.attribute(9, "skynet.attempt", Int64(span.attempt)) }
        if let revision = span.revision { message.attribute(9, "skynet.route.revision", Int64(revision)) }
        // Status: message = 2, code = 3 (OK = 1, ERROR = 2).
        message.message(15) { status in
            if let error = span.error {
                status.string(2, error)
                status.varint(3, 2)
            } else {
                status.varint(3, 1)
            }
        }
    }

    /// `count` bytes from hex digits; an id that is not `count` bytes of hex (a caller's own
    /// `Skynet-Trace-Id`) is hashed into that length instead, so its spans still share a trace.
    static func bytes(hex: String, count: Int) -> [UInt8] {
        let digits = Array(hex.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index + 1 < digits.count, let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) {
            bytes.append(high << 4 | low)
            index += 2
        }
        if index == digits.count && bytes.count == count { return bytes }
        // FNV-1a, widened to 16 bytes: stable across processes (unlike Hasher).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in digits {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let second = hash &* 0x9E37_79B9_7F4A_7C15
        return Array((withUnsafeBytes(of: hash.bigEndian, Array.init) + withUnsafeBytes(of: second.bigEndian, Array.init)).prefix(count))
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 48...57: digit - 48
        case 97...102: digit - 87
        case 65...70: digit - 55
        default: nil
        }
    }
}
