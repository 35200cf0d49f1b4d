import Foundation
import RegistryKit
public import SkyLib

/// ``SpanStore``: spans in collection `spans`, a day's worth kept by a TTL index.
extension MongoRegistry {
    /// One unordered insert for the batch: a span the server refuses (a duplicate id, from a batch
    /// sent twice) does not stop the others being written. The command still reports the write
    /// error, so the recorder counts the batch as dropped although most of it landed.
    public func recordSpans(_ spans: [Span]) async throws {
        guard !spans.isEmpty else { return }
        try await self.run("recording spans") {
            let documents: [MongoValue] = spans.map { span in
                Self.document(id: span.traceID + "-" + span.spanID + "-" + span.kind.rawValue, fields: span.json, date: ("startDate", span.start))
            }
            // Unordered: a span the server refuses (a duplicate id) does not stop the others
            // being written; the command still reports the write error, so the recorder counts
            // that batch as dropped although most of it landed.
            _ = try await self.pool.command([("insert", "spans"), ("documents", .array(documents)), ("ordered", false)])
        }
    }

    /// The route spans of the newest requests, by start time.
    public func latestRouteSpans(limit: Int) async throws -> [Span] {
        try await self.run("reading spans") {
            try await self.find("spans", filter: [("kind", .json(.string(Span.Kind.route.rawValue)))], sort: [("start", -1)], limit: limit).compactMap(Span.init(json:))
        }
    }

    /// One trace's spans, oldest first.
    public func spans(traceID: String) async throws -> [Span] {
        try await self.run("reading spans") {
            try await self.find("spans", filter: [("traceId", .json(.string(traceID)))], sort: [("start", 1)]).compactMap(Span.init(json:))
        }
    }
}
