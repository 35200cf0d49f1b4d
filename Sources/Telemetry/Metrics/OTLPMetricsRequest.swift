import Foundation

/// One instrument's value at an export, as OTLP carries it.
struct MetricPoint: Sendable, Equatable {
    /// What the point holds.
    enum Value: Sendable, Equatable {
        /// A monotonic cumulative sum (a counter).
        case sum(Double)
        /// The value now (a meter, or a recorder that does not aggregate).
        case gauge(Double)
        /// A cumulative histogram: `counts` has one more entry than `bounds` (the last is above
        /// every bound); durations are in seconds.
        case histogram(bounds: [Double], counts: [UInt64], sum: Double, count: UInt64, min: Double?, max: Double?)
    }

    var name: String
    var help: String
    var unit: String
    var attributes: [(String, String)]
    var value: Value

    static func == (lhs: MetricPoint, rhs: MetricPoint) -> Bool {
        lhs.name == rhs.name && lhs.value == rhs.value && lhs.attributes.elementsEqual(rhs.attributes, by: ==)
    }
}

/// An OTLP `ExportMetricsServiceRequest` (opentelemetry-proto, `collector/metrics/v1`) in the
/// protocol-buffers wire format OTLP/HTTP posts as `application/x-protobuf`.
///
/// Every instrument is cumulative since the process started (`start_time_unix_nano`), as a
/// Prometheus scrape is: a collector that misses an export loses resolution, not counts. The
/// points of one name are one `Metric`.
struct OTLPMetricsRequest: Sendable {
    /// The protocol-buffers encoding.
    let bytes: [UInt8]

    /// Encodes `points`, read at `now`, of a process named `serviceName` (node `instance`)
    /// counting since `start`.
    init(points: [MetricPoint], serviceName: String, instance: String, host: String, start: Date, now: Date) {
        let startNanos = UInt64(max(0, start.timeIntervalSince1970 * 1e9))
        let nowNanos = UInt64(max(0, now.timeIntervalSince1970 * 1e9))
        var byName: [String: [MetricPoint]] = [:]
        var order: [String] = []
        for point in points {
            if byName[point.name] == nil { order.append(point.name) }
            byName[point.name, default: []].append(point)
        }
        var writer = ProtobufWriter()
        // ExportMetricsServiceRequest.resource_metrics = 1
        writer.message(1) { resourceMetrics in
            // ResourceMetrics.resource = 1 (Resource.attributes = 1)
            resourceMetrics.message(1) { resource in
                resource.attribute(1, "service.name", serviceName)
                resource.attribute(1, "service.instance.id", instance)
                resource.attribute(1, "host.name", host)
            }
            // ResourceMetrics.scope_metrics = 2
            resourceMetrics.message(2) { scopeMetrics in
                scopeMetrics.message(1) { scope in scope.string(1, "skynet") }
                for name in order {
                    let group = byName[name] ?? []
                    // ScopeMetrics.metrics = 2
                    scopeMetrics.message(2) { metric in
                        metric.string(1, name)
                        metric.string(2, group.first?.help ?? "")
                        metric.string(3, group.first?.unit ?? "")
                        Self.encode(group, into: &metric, start: startNanos, now: nowNanos)
                    }
                }
            }
        }
        self.bytes = writer.buffer
    }

    /// The `data` of one `Metric`: all its points are of the kind of its first.
    private static func encode(_ points: [MetricPoint], into metric: inout ProtobufWriter, start: UInt64, now: UInt64) {
        guard let first = points.first else { return }
        switch first.value {
        case .sum:
            // Metric.sum = 7: data_points = 1, aggregation_temporality = 2 (CUMULATIVE = 2), is_monotonic = 3
            metric.message(7) { sum in
                for point in points { sum.message(1) { Self.number(point, into: &$0, start: start, now: now) } }
                sum.varint(2, 2)
                sum.varint(3, 1)
            }
        case .gauge:
            // Metric.gauge = 5: data_points = 1
            metric.message(5) { gauge in
                for point in points { gauge.message(1) { Self.number(point, into: &$0, start: start, now: now) } }
            }
        case .histogram:
            // Metric.histogram = 9: data_points = 1, aggregation_temporality = 2
            metric.message(9) { histogram in
                for point in points { histogram.message(1) { Self.histogram(point, into: &$0, start: start, now: now) } }
                histogram.varint(2, 2)
            }
        }
    }

    /// NumberDataPoint: attributes = 7, start_time_unix_nano = 2, time_unix_nano = 3, as_double = 4.
    private static func number(_ point: MetricPoint, into message: inout ProtobufWriter, start: UInt64, now: UInt64) {
        for (key, value) in point.attributes { message.attribute(7, key, value) }
        message.fixed64(2, start)
        message.fixed64(3, now)
        switch point.value {
        case .sum(let value), .gauge(let value): message.fixed64Always(4, value.bitPattern)
        case .histogram: break
        }
    }

    /// HistogramDataPoint: attributes = 9, start = 2, time = 3, count = 4, sum = 5,
    /// bucket_counts = 6, explicit_bounds = 7, min = 11, max = 12.
    private static func histogram(_ point: MetricPoint, into message: inout ProtobufWriter, start: UInt64, now: UInt64) {
        guard case .histogram(let bounds, let counts, let sum, let count, let min, let max) = point.value else { return }
        for (key, value) in point.attributes { message.attribute(9, key, value) }
        message.fixed64(2, start)
        message.fixed64(3, now)
        message.fixed64Always(4, count)
        message.fixed64Always(5, sum.bitPattern)
        message.packedFixed64(6, counts)
        message.packedDouble(7, bounds)
        if let min { message.fixed64Always(11, min.bitPattern) }
        if let max { message.fixed64Always(12, max.bitPattern) }
    }
}
