import Foundation
import GRDB
import RegistryKit
public import SkyLib

/// ``SpanStore``: spans in table `spans` as JSON, indexed by trace; the newest 100,000 kept.
extension SQLiteRegistry {
    /// Spans kept; older ones are deleted as new ones arrive.
    static let spansKept = 100_000

    /// Inserts a batch with one prepared statement in one transaction (the span recorder flushes in
    /// batches, so a flush is one disk write), then trims to the newest ``spansKept``.
    public func recordSpans(_ spans: [Span]) async throws {
        guard !spans.isEmpty else { return }
        try await self.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO spans (traceId, start, span) VALUES (?, ?, ?)")
            for span in spans {
                try statement.execute(arguments: [span.traceID, span.start.timeIntervalSince1970, JSONWriter.string(span.json)])
            }
            try db.execute(sql: "DELETE FROM spans WHERE seq <= (SELECT MAX(seq) FROM spans) - ?", arguments: [Self.spansKept])
        }
    }

    /// The route spans of the newest requests, walking back from the end of the table;
    /// `json_extract` filters on the kind without a column of its own, since only `sky trace` with
    /// no id asks.
    public func latestRouteSpans(limit: Int) async throws -> [Span] {
        try await self.read("spans") { db in
            // Newest rows first, kept to route spans: a bounded walk back from the end.
            try String.fetchAll(db, sql: "SELECT span FROM spans WHERE json_extract(span, '$.kind') = 'route' ORDER BY start DESC, seq DESC LIMIT ?", arguments: [limit])
                .compactMap { text in (try? JSONParser.parse(text)).flatMap(Span.init(json:)) }
        }
    }

    /// One trace's spans through the `traceId` index, oldest first (ties by insertion), as `sky
    /// trace` draws them.
    public func spans(traceID: String) async throws -> [Span] {
        try await self.read("spans") { db in
            try String.fetchAll(db, sql: "SELECT span FROM spans WHERE traceId = ? ORDER BY start, seq", arguments: [traceID])
                .compactMap { text in (try? JSONParser.parse(text)).flatMap(Span.init(json:)) }
        }
    }
}
