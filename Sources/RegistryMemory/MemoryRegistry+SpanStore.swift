import RegistryKit
public import SkyLib
import Synchronization

/// ``SpanStore``: spans in the order recorded, the newest 100,000 kept.
extension MemoryRegistry {
    /// Appends the batch, keeping the newest ``spansKept``.
    public func recordSpans(_ spans: [Span]) async throws {
        self.state.withLock { state in
            state.spans.append(contentsOf: spans)
            if state.spans.count > Self.spansKept { state.spans.removeFirst(state.spans.count - Self.spansKept) }
        }
    }

    /// One trace's spans, oldest first; spans that started together keep the order they were
    /// recorded in (the SQLite driver's order by start, then insertion).
    public func spans(traceID: String) async throws -> [Span] {
        // Stable: spans that started together keep the order they were recorded in.
        let recorded = self.state.withLock { state in Array(state.spans.enumerated().filter { $0.element.traceID == traceID }) }
        return recorded.sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map { $0.element }
    }

    /// The route spans of the newest requests, newest first.
    public func latestRouteSpans(limit: Int) async throws -> [Span] {
        let recorded = self.state.withLock { state in Array(state.spans.enumerated().filter { $0.element.kind == Span.Kind.route }) }
        return recorded.sorted { ($0.element.start, $0.offset) > ($1.element.start, $1.offset) }.prefix(limit).map { $0.element }
    }
}
