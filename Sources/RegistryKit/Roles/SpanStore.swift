public import SkyLib

/// Where trace spans are kept, so `sky trace ID` can draw a request's path across processes.
public protocol SpanStore: Sendable {
    /// Stores trace spans (written in batches by ``SpanRecorder``). Old spans are pruned by
    /// the backend: the newest 100,000 are kept (SQLite), or a day's worth (MongoDB).
    func recordSpans(_ spans: [Span]) async throws

    /// Every stored span of one trace, oldest first.
    func spans(traceID: String) async throws -> [Span]

    /// The route spans of the latest `limit` requests, newest first (`sky trace` with no id).
    func latestRouteSpans(limit: Int) async throws -> [Span]
}
