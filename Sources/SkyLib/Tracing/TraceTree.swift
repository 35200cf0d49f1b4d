import Foundation

/// Renders a trace's spans as the tree `sky trace` prints.
///
/// ```
/// trace 4bf92f3577b34da6a3ce929d0e0e4736: route text, 3 spans, 2 processes, 4.21 ms
/// route text                          +0.00 ms    4.21 ms  router 1a2b3c4d on host-a
/// └─ call uppercase #1 → 9f8e7d6c     +0.10 ms    3.10 ms  127.0.0.1:4001
///    └─ service uppercase             +0.50 ms    1.20 ms  9f8e7d6c on host-b
/// ```
/// Spans whose parent is missing (not flushed yet, or recorded elsewhere) are shown as roots.
public enum TraceTree {
    /// The spans of one trace as an indented tree, one line per span, children in start order.
    public static func render(_ spans: [Span]) -> String {
        guard let first = spans.min(by: { $0.start < $1.start }) else { return "no spans" }
        let ids = Set(spans.map(\.spanID))
        var children: [String: [Span]] = [:]
        var roots: [Span] = []
        for span in spans {
            if let parent = span.parentID, ids.contains(parent), parent != span.spanID {
                children[parent, default: []].append(span)
            } else {
                roots.append(span)
            }
        }
        let order: (Span, Span) -> Bool = { ($0.start, $0.kind.rawValue) < ($1.start, $1.kind.rawValue) }
        let origin = first.start
        var rows: [(label: String, offset: String, duration: String, place: String, error: String?)] = []
        func walk(_ span: Span, prefix: String, childPrefix: String) {
            rows.append((
                prefix + Self.label(span),
                String(format: "+%.2f ms", span.start.timeIntervalSince(origin) * 1000),
                String(format: "%.2f ms", span.duration * 1000),
                Self.place(span),
                span.error
            ))
            let kids = (children[span.spanID] ?? []).sorted(by: order)
            for (index, kid) in kids.enumerated() {
                let last = index == kids.count - 1
                walk(kid, prefix: childPrefix + (last ? "└─ " : "├─ "), childPrefix: childPrefix + (last ? "   " : "│  "))
            }
        }
        for root in roots.sorted(by: order) { walk(root, prefix: "", childPrefix: "") }

        let route = spans.first(where: { $0.kind == .route })?.name ?? first.route
        let processes = Set(spans.map(\.recorder)).count
        let total = roots.map { $0.start.timeIntervalSince(origin) + $0.duration }.max() ?? 0
        var text = "trace \(first.traceID): route \(route), \(spans.count) spans, \(processes) process\(processes == 1 ? "" : "es"), "
            + String(format: "%.2f ms", total * 1000) + "\n"
        let labelWidth = rows.map(\.label.count).max() ?? 0
        let offsetWidth = rows.map(\.offset.count).max() ?? 0
        let durationWidth = rows.map(\.duration.count).max() ?? 0
        for row in rows {
            var line = row.label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
            line += "  " + String(repeating: " ", count: offsetWidth - row.offset.count) + row.offset
            line += "  " + String(repeating: " ", count: durationWidth - row.duration.count) + row.duration
            line += "  " + row.place
            if let error = row.error { line += "  ✗ " + error }
            text += line + "\n"
        }
        return text
    }

    private static func label(_ span: Span) -> String {
        switch span.kind {
        case .route: return "route \(span.name)" + (span.revision.map { " (revision \($0))" } ?? "")
        case .call: return "call \(span.name) #\(span.attempt)" + (span.instance.map { " → \(Identifiers.short($0))" } ?? "")
        case .service: return "service \(span.name)"
        }
    }

    private static func place(_ span: Span) -> String {
        switch span.kind {
        case .route: return "router \(Identifiers.short(span.recorder)) on \(span.host)"
        case .call: return span.address ?? "no instance"
        case .service: return "\(Identifiers.short(span.recorder)) on \(span.host)"
        }
    }
}
