/// The metrics Skynet records through swift-metrics, with the help text and kind every
/// backend shows: swift-metrics carries only a label and dimensions, so the backends look the
/// rest up here by label. One list, so `/metrics` and OTLP describe a metric alike.
public struct SkyMetric: Sendable, Hashable {
    /// The instrument's kind, as the backends export it.
    public enum Kind: String, Sendable {
        /// Only goes up (a swift-metrics `Counter`).
        case counter
        /// Goes up and down (a swift-metrics `Meter`).
        case gauge
        /// Durations in seconds, in buckets (a swift-metrics `Timer`).
        case duration
    }

    /// The label the instrument is made with: the Prometheus name, `_total` and unit included.
    public let name: String
    /// One sentence on what is counted.
    public let help: String
    /// How it is recorded.
    public let kind: Kind

    /// Requests a route finished, by `route` and `outcome` (`ok`, `error`).
    public static let routeRequests = SkyMetric(name: "skynet_route_requests_total", help: "Requests a route finished, by outcome.", kind: .counter)
    /// Requests of a route running now, by `route`.
    public static let routeInflight = SkyMetric(name: "skynet_route_inflight", help: "Requests of a route running now.", kind: .gauge)
    /// Time from a request's start to its answer, by `route`.
    public static let routeDuration = SkyMetric(name: "skynet_route_duration_seconds", help: "Time from a request's start to its answer.", kind: .duration)
    /// Out-of-band steps dropped because too many were in flight, by `route`.
    public static let asyncDropped = SkyMetric(
        name: "skynet_async_dropped_total", help: "Out-of-band steps dropped because too many were in flight.", kind: .counter
    )
    /// Attempts at a step, by `route`, `service` and `outcome`.
    public static let stepCalls = SkyMetric(name: "skynet_step_calls_total", help: "Attempts at a step, by outcome.", kind: .counter)
    /// Retries of a step, by `route` and `service`.
    public static let stepRetries = SkyMetric(name: "skynet_step_retries_total", help: "Retries of a step.", kind: .counter)
    /// Time of one attempt at a step, by `route` and `service`.
    public static let stepDuration = SkyMetric(name: "skynet_step_duration_seconds", help: "Time of one attempt at a step.", kind: .duration)

    /// Every metric above.
    public static let all: [SkyMetric] = [routeRequests, routeInflight, routeDuration, asyncDropped, stepCalls, stepRetries, stepDuration]

    /// The metric made with `label`, when it is one of ours.
    public static func named(_ label: String) -> SkyMetric? {
        Self.byName[label]
    }

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Bucket bounds for durations (route and step latency), in seconds: 250 µs to 30 s.
    public static let durationBuckets: [Duration] = [
        .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]
}
