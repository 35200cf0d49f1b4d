import Foundation
import SkyLib
import RouteModel

/// Small time-series charts per route over the last minutes — requests a second, p50 and
/// p99 latency, error rate — as inline SVG polylines drawn on the server from the samples
/// ``ClusterWatcher`` keeps (one a second).
enum RouteCharts {
    /// A chart's size in the page, in pixels: small enough for four to a row.
    static let width = 260.0
    static let height = 64.0

    /// One row per route with its three charts, drawn from the samples kept over `span` seconds;
    /// nothing until the first sample.
    static func html(_ view: ClusterView, span: Double) -> String {
        guard !view.series.isEmpty else { return "" }
        var html = "<table id=\"charts\"><tr><th>Route (last \(Int(span / 60)) min)</th><th>Requests/s</th><th>Latency p50 · p99 (ms)</th><th>Errors</th></tr>"
        for name in view.series.keys.sorted() {
            let samples = view.series[name] ?? []
            let now = view.updatedAt
            html += "<tr class=\"chart\" data-route=\"\(DashboardPage.escape(name))\" data-samples=\"\(samples.count)\"><td><b>\(DashboardPage.escape(name))</b></td>"
            html += "<td>\(Self.chart([samples.map { ($0.at, $0.rates.perSecond) }], now: now, span: span, unit: "/s", classes: ["rate"]))</td>"
            html += "<td>\(Self.chart([samples.compactMap { s in s.rates.p50Milliseconds.map { (s.at, $0) } }, samples.compactMap { s in s.rates.p99Milliseconds.map { (s.at, $0) } }], now: now, span: span, unit: " ms", classes: ["p50", "p99"]))</td>"
            // Errors on a fixed 0–100 % scale: a share, never above 100 %.
            html += "<td>\(Self.chart([samples.map { ($0.at, $0.rates.errorRate * 100) }], now: now, span: span, unit: " %", classes: ["errors"], top: 100))</td></tr>"
        }
        return html + "</table>"
    }

    /// One chart: a polyline per series, the x axis the last `span` seconds to `now`, the y
    /// axis 0 to `top` (the largest value, when not given), labelled with that top.
    static func chart(_ series: [[(Date, Double)]], now: Date, span: Double, unit: String, classes: [String], top: Double? = nil) -> String {
        let largest = series.flatMap { $0.map(\.1) }.max() ?? 0
        let top = top ?? max(largest * 1.15, 0.001)
        var svg = "<svg class=\"spark\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\">"
        svg += "<rect class=\"frame\" x=\"0\" y=\"0\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\"/>"
        for (index, points) in series.enumerated() {
            let coordinates = points.map { at, value -> String in
                let x = max(0, Self.width - now.timeIntervalSince(at) / span * Self.width)
                let y = Self.height - 4 - min(1, value / top) * (Self.height - 14)
                return String(format: "%.1f,%.1f", x, y)
            }
            guard !coordinates.isEmpty else { continue }
            svg += "<polyline class=\"\(classes[min(index, classes.count - 1)])\" points=\"\(coordinates.joined(separator: " "))\"/>"
        }
        let label = top >= 10 ? String(format: "%.0f", top) : String(format: "%.2g", top)
        svg += "<text x=\"4\" y=\"11\">\(label)\(DashboardPage.escape(unit))</text></svg>"
        return svg
    }
}
