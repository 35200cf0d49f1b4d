import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The dashboard's drawing and charts in headless Chromium, from real processes: initiators →
/// routes → services → instances with rates on the edges, a chart per route, and an instance
/// killed outright drawn red (no reaper runs here, so its record stays, expired).
@Suite(.timeLimit(.minutes(3)))
struct DashboardTopologyTests {
    @Test func theTopologyIsDrawnWithRatesAndAKilledInstanceTurnsRed() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("pair.yaml", ObservabilityTests.route)
        let observability = ObservabilityTests()
        let upperA = try await observability.service("uppercase", scratch)
        let upperB = try await observability.service("uppercase", scratch)
        let reverse = try await observability.service("reverse", scratch)
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        let base = try await router.waitForWord(after: "router ready at ")
        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        defer { for process in [upperA.process, upperB.process, reverse.process, router, dashboard] { process.signal(SIGKILL) } }

        // Traffic for a few seconds, so the window and the charts have something.
        let traffic = Task {
            var index = 0
            while !Task.isCancelled {
                _ = try? await HTTP.post("\(base)/routes/pair", #"{"text":"draw \#(index)"}"#)
                index += 1
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { traffic.cancel() }

        let browser = try Chromium()
        var dom = ""
        let drawn = await eventually(within: 20) {
            dom = (try? await browser.dom(of: page)) ?? ""
            // An edge from HTTP into the route with a rate, and charts with samples.
            return dom.contains(#"<svg id="topology""#) && dom.contains(#"data-from="initiator:HTTP" data-to="route:pair""#)
                && Self.samples(in: dom, route: "pair") >= 2
        }
        #expect(drawn, "no topology with the route's edge and chart samples: \(dom.prefix(3000))")
        for name in ["pair", "uppercase", "reverse", "HTTP"] { #expect(dom.contains(#"data-name="\#(name)""#), "no box for \(name)") }
        for node in [upperA.node, upperB.node, reverse.node] {
            #expect(Self.status(of: node, in: dom) == "ready", "instance \(node): \(Self.status(of: node, in: dom) ?? "missing")")
        }
        #expect(dom.contains(#"data-from="route:pair" data-to="service:uppercase""#))
        #expect(Self.edgeLabel(from: "initiator:HTTP", to: "route:pair", in: dom)?.hasSuffix("/s") == true)
        #expect(dom.contains(#"<polyline class="rate""#) && dom.contains(#"<polyline class="p99""#))
        // Every percentage on the page is a share: none above 100 %.
        let percentages = Self.percentages(in: dom)
        #expect(!percentages.isEmpty && percentages.allSatisfy { $0 <= 100 }, "\(percentages)")

        // One instance killed outright: red once its heartbeat is past its TTL.
        upperB.process.signal(SIGKILL)
        let red = await eventually(within: 20) {
            dom = (try? await browser.dom(of: page)) ?? dom
            return Self.status(of: upperB.node, in: dom) == "dead"
        }
        #expect(red, "the killed instance is \(Self.status(of: upperB.node, in: dom) ?? "missing")")
        #expect(Self.status(of: upperA.node, in: dom) == "ready")
        try await browser.screenshot(of: page, to: Chromium.artifacts + "/dashboard-topology.png")
        #expect(FileManager.default.fileExists(atPath: Chromium.artifacts + "/dashboard-topology.png"))
    }

    /// The `data-status` of an instance's box.
    static func status(of node: String, in dom: String) -> String? {
        guard let at = dom.range(of: #"data-node="\#(node)""#) else { return nil }
        let before = dom[..<at.lowerBound]
        guard let start = before.range(of: #"data-status=""#, options: .backwards) else { return nil }
        return String(before[start.upperBound...].prefix { $0 != "\"" })
    }

    static func samples(in dom: String, route: String) -> Int {
        guard let at = dom.range(of: #"class="chart" data-route="\#(route)" data-samples=""#) else { return 0 }
        return Int(dom[at.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    static func edgeLabel(from: String, to: String, in dom: String) -> String? {
        guard let at = dom.range(of: #"data-from="\#(from)" data-to="\#(to)""#), let text = dom[at.upperBound...].range(of: "<text") else { return nil }
        let rest = dom[text.upperBound...]
        guard let close = rest.firstIndex(of: ">"), let end = rest.range(of: "</text>") else { return nil }
        return String(rest[rest.index(after: close)..<end.lowerBound])
    }

    /// Every `NN.N%` the page prints.
    static func percentages(in dom: String) -> [Double] {
        dom.matches(of: /(\d+(?:\.\d+)?)%/).compactMap { Double($0.1) }
    }
}
