/// Writes the protocol-buffers wire format: just the field kinds OTLP's trace and metrics
/// messages use.
///
/// Why our own: the whole of OTLP trace export needs varints, fixed64, fixed32 and
/// length-delimited fields — a page of code — where swift-protobuf and its generated code
/// cost minutes of every fresh build (docs/DECISIONS.md). The encoding is checked against the
/// official definitions (opentelemetry-proto from PyPI) by the end-to-end tests.
struct ProtobufWriter {
    private(set) var buffer: [UInt8] = []

    init() {}

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            self.buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        self.buffer.append(UInt8(value))
    }

    fileprivate mutating func tag(_ field: Int, _ wireType: UInt64) {
        self.varint(UInt64(field) << 3 | wireType)
    }

    /// A varint field (int64, uint32, enum, bool); zero is the default and not written.
    mutating func varint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        self.tag(field, 0)
        self.varint(value)
    }

    /// A fixed64 field (`start_time_unix_nano` …).
    mutating func fixed64(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        self.tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { self.buffer.append(contentsOf: $0) }
    }

    /// A fixed32 field (`flags`).
    mutating func fixed32(_ field: Int, _ value: UInt32) {
        guard value != 0 else { return }
        self.tag(field, 5)
        withUnsafeBytes(of: value.littleEndian) { self.buffer.append(contentsOf: $0) }
    }

    /// A double field.
    mutating func double(_ field: Int, _ value: Double) {
        self.tag(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { self.buffer.append(contentsOf: $0) }
    }

    /// A bytes field; empty is the default and not written.
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        guard !value.isEmpty else { return }
        self.tag(field, 2)
        self.varint(UInt64(value.count))
        self.buffer.append(contentsOf: value)
    }

    /// A string field; empty is the default and not written.
    mutating func string(_ field: Int, _ value: String) {
        self.bytes(field, Array(value.utf8))
    }

    /// An embedded message, written by `body` (always written, even when empty: a present
    /// empty message is not the same as an absent one).
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        self.tag(field, 2)
        self.varint(UInt64(inner.buffer.count))
        self.buffer.append(contentsOf: inner.buffer)
    }
}

extension ProtobufWriter {
    /// An OTLP `KeyValue` with a string `AnyValue`, as field `field` of the message being written.
    mutating func attribute(_ field: Int, _ key: String, _ value: String) {
        self.message(field) { keyValue in
            keyValue.string(1, key)
            keyValue.message(2) { $0.string(1, value) }
        }
    }

    /// An OTLP `KeyValue` with an integer `AnyValue`.
    mutating func attribute(_ field: Int, _ key: String, _ value: Int64) {
        self.message(field) { keyValue in
            keyValue.string(1, key)
            keyValue.message(2) { $0.varint(3, UInt64(bitPattern: value)) }
        }
    }

    /// A packed `repeated fixed64` field (histogram bucket counts); empty is not written.
    mutating func packedFixed64(_ field: Int, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 8)
        for value in values { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        self.bytes(field, bytes)
    }

    /// A packed `repeated double` field (histogram bounds); empty is not written.
    mutating func packedDouble(_ field: Int, _ values: [Double]) {
        self.packedFixed64(field, values.map(\.bitPattern))
    }

    /// A fixed64 field written even when zero (a `sfixed64` or a `double` inside a `oneof`,
    /// where presence is the value).
    mutating func fixed64Always(_ field: Int, _ value: UInt64) {
        self.tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { self.buffer.append(contentsOf: $0) }
    }
}
