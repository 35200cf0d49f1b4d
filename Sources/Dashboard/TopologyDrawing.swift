import Foundation
import RegistryKit
import SkyLib
import RouteModel

/// The cluster drawn as it runs: initiators → routes → services → instances, left to right,
/// as inline SVG rendered on the server with the rest of the page (no script, no build step).
///
/// Edges into a route carry its requests a second from that initiator; edges into a service
/// carry the step's attempts a second (red when some failed in the window). Instances are
/// coloured by the status the page shows: ready green, starting or draining amber, dead
/// (heartbeat past its TTL, not yet reaped) red, unregistered grey.
enum TopologyDrawing {
    /// One box of the drawing: an initiator, a route, a service or an instance, in its column and
    /// row.
    struct Box {
        var id: String
        var kind: String
        var label: String
        var detail: String
        var status: String
        var column: Int
        var row: Int = 0
    }

    /// An arrow between two boxes, labelled with its rate; red (`bad`) when some calls failed in
    /// the window.
    struct Edge {
        var from: String
        var to: String
        var label: String
        var bad: Bool
    }

    /// Where the four columns start (initiators, routes, services, instances), and the boxes' size:
    /// fixed, so the drawing reads the same every second and the browser does not reflow it.
    static let columnX = [10, 270, 530, 790]
    static let boxWidth = 220
    static let boxHeight = 34
    static let rowHeight = 46

    /// The drawing of `view`: boxes laid out column by column in the order the view lists them,
    /// then the edges between them.
    static func svg(_ view: ClusterView) -> String {
        var boxes: [String: Box] = [:]
        var edges: [Edge] = []
        func add(_ box: Box) { if boxes[box.id] == nil { boxes[box.id] = box } }
        func rate(_ value: Double) -> String { value >= 10 ? String(format: "%.0f/s", value) : String(format: "%.1f/s", value) }

        let routers = view.nodes.filter { $0.kind == .router && $0.isShownReady(at: view.updatedAt) }.count
        for route in view.routes {
            add(Box(id: "route:\(route.route)", kind: "route", label: route.route, detail: rate(route.rates.perSecond), status: route.rates.errorRate > 0 ? "failing" : "ready", column: 1))
            // HTTP: every router serves every route; the others: as the route file declares.
            var sources: [(label: String, kind: String)] = routers > 0 || (route.sourceRates["http"] ?? 0) > 0 ? [("HTTP", "http")] : []
            for label in route.from {
                sources.append((label, String(label.prefix { $0 != " " })))
            }
            var labelled = Set<String>()
            for source in sources {
                add(Box(id: "initiator:\(source.label)", kind: "initiator", label: source.label, detail: "", status: "ready", column: 0))
                // A kind's rate goes on its first edge only (two folders of one kind share it).
                let shown = labelled.insert(source.kind).inserted ? rate(route.sourceRates[source.kind] ?? 0) : ""
                edges.append(Edge(from: "initiator:\(source.label)", to: "route:\(route.route)", label: shown, bad: false))
            }
            var seen = Set<String>()
            for step in route.steps where seen.insert(step.service).inserted {
                add(Box(id: "service:\(step.service)", kind: "service", label: step.service, detail: "", status: "ready", column: 2))
                edges.append(Edge(from: "route:\(route.route)", to: "service:\(step.service)", label: rate(step.rates.perSecond), bad: step.rates.errorRate > 0))
            }
        }
        for node in view.nodes where node.kind == .service {
            add(Box(id: "service:\(node.service)", kind: "service", label: node.service, detail: "", status: "ready", column: 2))
            let status = node.shownStatus(at: view.updatedAt)
            add(Box(
                id: "instance:\(node.id)", kind: "instance", label: "\(node.service) \(Identifiers.short(node.id))", detail: node.address,
                status: status == "expired" ? "dead" : status, column: 3
            ))
            edges.append(Edge(from: "service:\(node.service)", to: "instance:\(node.id)", label: "", bad: status == "expired"))
        }
        guard !boxes.isEmpty else { return "<p class=\"meta\" id=\"topology\">nothing to draw yet</p>" }

        // Rows: each column in a stable order (kind, then name).
        var rows = [0, 0, 0, 0]
        for id in boxes.keys.sorted(by: { (boxes[$0]!.column, boxes[$0]!.label, $0) < (boxes[$1]!.column, boxes[$1]!.label, $1) }) {
            boxes[id]!.row = rows[boxes[id]!.column]
            rows[boxes[id]!.column] += 1
        }
        let height = (rows.max() ?? 1) * Self.rowHeight + 30
        var svg = "<svg id=\"topology\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1020 \(height)\" width=\"100%\" role=\"img\" aria-label=\"cluster topology\">"
        for (index, title) in ["initiators", "routes", "services", "instances"].enumerated() {
            svg += "<text class=\"col\" x=\"\(Self.columnX[index])\" y=\"14\">\(title)</text>"
        }
        for edge in edges {
            guard let from = boxes[edge.from], let to = boxes[edge.to] else { continue }
            let x1 = Self.columnX[from.column] + Self.boxWidth, y1 = Self.y(from) + Self.boxHeight / 2
            let x2 = Self.columnX[to.column], y2 = Self.y(to) + Self.boxHeight / 2
            svg += "<g class=\"edge\(edge.bad ? " bad" : "")\" data-from=\"\(DashboardPage.escape(edge.from))\" data-to=\"\(DashboardPage.escape(edge.to))\">"
            svg += "<path d=\"M\(x1),\(y1) C\(x1 + 20),\(y1) \(x2 - 20),\(y2) \(x2),\(y2)\"/>"
            if !edge.label.isEmpty {
                svg += "<text x=\"\((x1 + x2) / 2)\" y=\"\((y1 + y2) / 2 - 4)\" text-anchor=\"middle\">\(DashboardPage.escape(edge.label))</text>"
            }
            svg += "</g>"
        }
        for box in boxes.values.sorted(by: { $0.id < $1.id }) {
            let x = Self.columnX[box.column], y = Self.y(box)
            let node = box.kind == "instance" ? " data-node=\"\(DashboardPage.escape(String(box.id.dropFirst("instance:".count))))\"" : ""
            svg += "<g class=\"box \(box.kind) \(box.status)\" data-kind=\"\(box.kind)\" data-name=\"\(DashboardPage.escape(box.label))\" data-status=\"\(box.status)\"\(node)>"
            svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(Self.boxWidth)\" height=\"\(Self.boxHeight)\" rx=\"6\"/>"
            svg += "<text x=\"\(x + 8)\" y=\"\(y + 14)\">\(DashboardPage.escape(box.label))</text>"
            let detail = box.detail + (box.status == "dead" ? " · dead" : box.status == "draining" ? " · draining" : "")
            if !detail.isEmpty { svg += "<text class=\"detail\" x=\"\(x + 8)\" y=\"\(y + 28)\">\(DashboardPage.escape(detail))</text>" }
            svg += "</g>"
        }
        return svg + "</svg>"
    }

    /// A box's top, from its row.
    static func y(_ box: Box) -> Int { 24 + box.row * Self.rowHeight }
}
