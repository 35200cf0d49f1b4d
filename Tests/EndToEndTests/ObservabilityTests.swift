import Foundation
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit

/// What an operator sees, from real processes: counters at `/debug/vars` and `/metrics`, one
/// request's trace across three processes with `sky trace`, and the dashboard in headless
/// Chromium (nodes and routes shown, a killed node gone, a screenshot kept).
@Suite(.timeLimit(.minutes(3)))
struct ObservabilityTests {
    static let route = """
        name: pair
        timeout: 3s
        steps:
          - service: uppercase
          - service: reverse
        """

    /// Starts `sky service NAME`; answers the process, its address and its node id.
    func service(_ name: String, _ scratch: Scratch) async throws -> (process: SkyProcess, address: String, node: String) {
        let process = try SkyProcess(
            ["service", name, "--registry", scratch.registry, "--ttl", "1.5", "--heartbeat", "0.3"],
            name: name, directory: scratch.path
        )
        // "service NAME VERSION ready at ADDRESS node ID"
        let (address, node) = try await process.waitForLine { line -> (String, String)? in
            let words = line.split(separator: " ").map(String.init)
            guard let at = words.firstIndex(of: "at"), let nodeIndex = words.firstIndex(of: "node"), nodeIndex + 1 < words.count else { return nil }
            return (words[at + 1], words[nodeIndex + 1])
        }
        return (process, address, node)
    }

    @Test func countersMetricsTracesAndTheDashboardShowTheCluster() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("pair.yaml", Self.route)
        let upper = try await self.service("uppercase", scratch)
        let reverse = try await self.service("reverse", scratch)
        let reaper = try SkyProcess(["reaper", "--registry", scratch.registry, "--interval", "0.2"], name: "reaper", directory: scratch.path)
        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path
        )
        let base = try await router.waitForWord(after: "router ready at ")
        let dashboard = try SkyProcess(
            ["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path
        )
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        defer { for process in [upper.process, reverse.process, reaper, router, dashboard] { process.signal(SIGKILL) } }

        // Traffic through the route; one request asks for its trace to be recorded.
        var traceID = ""
        for index in 0..<20 {
            let answer = try await HTTP.post("\(base)/routes/pair", #"{"text":"abc \#(index)"}"#, headers: index == 0 ? [("Skynet-Trace", "1")] : [])
            #expect(answer.status == 200)
            if index == 0 { traceID = answer.headers.first(name: "Skynet-Trace-Id") ?? "" }
        }
        #expect(traceID.count == 32)
        // One request that fails: a route whose service does not exist.
        try scratch.writeRoute("broken.yaml", "name: broken\nsteps:\n  - service: nowhere\n")
        let brokenAnswered = await eventually(within: 10) {
            (try? await HTTP.post("\(base)/routes/broken", "{}"))?.status == 502
        }
        #expect(brokenAnswered)

        // /debug/vars: the original names and the per-step counters.
        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect(vars["route.pair-processed"]?.intValue == 20)
        #expect(vars["route.pair-errors"]?.intValue == 0)
        #expect(vars["route.pair-inflight"]?.intValue == 0)
        #expect(vars["step.uppercase-calls"]?.intValue == 20)
        #expect(vars["step.reverse-processed"]?.intValue == 20)
        #expect((vars["uptimeSeconds"]?.doubleValue ?? 0) > 0)
        let serviceVars = try await HTTP.get("http://\(reverse.address)/debug/vars").json
        #expect(serviceVars["reverse-processed"]?.intValue == 20)

        // /metrics: Prometheus text with the same counts and latency histograms.
        let metrics = try await HTTP.get("\(base)/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
        let lines = Set(metrics.text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"skynet_route_requests_total{route="pair",outcome="ok"} 20"#))
        #expect(lines.contains(#"skynet_step_duration_seconds_count{route="pair",service="reverse"} 20"#))
        #expect(lines.contains(#"skynet_route_duration_seconds_count{route="pair"} 20"#))
        #expect(lines.contains(#"skynet_var{name="route.pair-processed"} 20.0"#))

        // Every process serves the admin endpoints: the reaper registers its admin address,
        // and the dashboard has them beside its page.
        let registry = try await scratch.openRegistry()
        var reaperAddress = ""
        #expect(await eventually {
            reaperAddress = (try? await registry.nodes(matching: NodeQuery(kind: .reaper)).first?.address) ?? ""
            return reaperAddress.contains(":") && !reaperAddress.hasSuffix(":0")
        })
        for admin in ["http://\(reaperAddress)", page.hasSuffix("/") ? String(page.dropLast()) : page, "http://\(upper.address)"] {
            #expect(try await HTTP.get("\(admin)/health").status == 200, "\(admin)/health")
            #expect((try await HTTP.get("\(admin)/debug/vars").json["uptimeSeconds"]?.doubleValue ?? 0) > 0, "\(admin)/debug/vars")
            #expect(try await HTTP.get("\(admin)/metrics").text.contains("skynet_uptime_seconds"), "\(admin)/metrics")
        }

        // sky trace: the route span at the router, a call span per step, and each service's own
        // span under its call, recorded by three different processes.
        var spans: [Span] = []
        let complete = await eventually(within: 10) {
            let run = try? SkyProcess(["trace", traceID, "--json", "--registry", scratch.registry], name: "trace", directory: scratch.path)
            guard let run, (try? await run.waitForExit()) == 0, let text = run.stdoutLines.first, let json = try? JSONParser.parse(text) else {
                return false
            }
            spans = (json.arrayValue ?? []).compactMap(Span.init(json:))
            return spans.count == 5
        }
        #expect(complete, "spans: \(spans.map { "\($0.kind) \($0.name)" })")
        let byKind = Dictionary(grouping: spans, by: \.kind)
        let root = try #require(byKind[.route]?.first)
        #expect(root.name == "pair" && root.parentID == nil)
        let calls = (byKind[.call] ?? []).sorted { $0.start < $1.start }
        #expect(calls.map(\.name) == ["uppercase", "reverse"])
        #expect(calls.allSatisfy { $0.parentID == root.spanID })
        #expect(calls.map(\.instance) == [upper.node, reverse.node])
        let services = byKind[.service] ?? []
        #expect(Set(services.map(\.recorder)) == [upper.node, reverse.node])
        #expect(services.allSatisfy { service in calls.contains { $0.spanID == service.parentID && $0.instance == service.recorder } })
        #expect(Set(spans.map(\.recorder)).count == 3)
        let tree = try SkyProcess(["trace", traceID, "--registry", scratch.registry], name: "trace-tree", directory: scratch.path)
        #expect(try await tree.waitForExit() == 0)
        let printed = tree.stdoutLines.joined(separator: "\n")
        #expect(printed.contains("route pair") && printed.contains("└─ call reverse #1") && printed.contains("service uppercase"))
        // sky trace with no id: the latest requests, newest first; trace ids are time-ordered
        // (UUIDv7 bits), so they sort the same way as the times.
        let latest = try SkyProcess(["trace", "--last", "50", "--registry", scratch.registry], name: "trace-latest", directory: scratch.path)
        #expect(try await latest.waitForExit() == 0)
        let rows = latest.stdoutLines.dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.contains { $0.first == traceID }, "\(latest.stdoutLines)")
        let started = rows.compactMap { $0.count > 1 ? $0[1] : nil }
        #expect(started == started.sorted(by: >), "not newest first: \(started)")
        let ids = rows.compactMap(\.first)
        #expect(ids == ids.sorted(by: >), "trace ids do not sort by time: \(ids)")

        // The dashboard, in a real browser.
        let browser = try Chromium()
        let dom = try await browser.dom(of: page)
        #expect(dom.contains(#"data-route="pair""#))
        for node in [upper.node, reverse.node] { #expect(dom.contains(#"data-node="\#(node)""#)) }
        #expect(dom.contains("registered"))
        // The failed request is listed with its route, step and reason.
        #expect(dom.contains("<td>broken</td><td>1. nowhere</td>") && dom.contains("no ready instance of service"))
        try await browser.screenshot(of: page, to: Chromium.artifacts + "/dashboard.png")
        #expect(FileManager.default.fileExists(atPath: Chromium.artifacts + "/dashboard.png"))

        // A killed node disappears from the page once the reaper removed it.
        reverse.process.signal(SIGKILL)
        let gone = await eventually(within: 20) {
            guard let dom = try? await browser.dom(of: page) else { return false }
            return !dom.contains(#"data-node="\#(reverse.node)""#) && dom.contains(#"data-node="\#(upper.node)""#)
        }
        #expect(gone, "the killed reverse instance is still on the dashboard")
        let after = try await browser.dom(of: page)
        #expect(after.contains("reaped"))
    }
}

/// Headless Chromium from Debian (`scripts/bootstrap.sh` installs it for the tests).
struct Chromium {
    let binary: String

    /// Where screenshots are kept: `SKYNET_TEST_ARTIFACTS`, else `.build/test-artifacts`.
    static var artifacts: String {
        if let path = ProcessInfo.processInfo.environment["SKYNET_TEST_ARTIFACTS"], !path.isEmpty { return path }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/test-artifacts").path
    }

    init() throws {
        guard let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw E2EError("headless Chromium not found: scripts/bootstrap.sh installs Debian's chromium")
        }
        self.binary = found
    }

    /// The page's DOM after its scripts ran for a moment (`flags` before the URL, such as a
    /// certificate to trust).
    func dom(of url: String, flags: [String] = []) async throws -> String {
        try await self.run(flags + ["--dump-dom", "--virtual-time-budget=1500", url])
    }

    func screenshot(of url: String, to path: String) async throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = try await self.run(["--screenshot=\(path)", "--window-size=1280,860", "--hide-scrollbars", "--virtual-time-budget=1500", url])
    }

    private func run(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.binary)
        // As root in a container Chromium's sandbox cannot start; these pages are our own.
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"] + arguments
        // Output to a file: a pipe could fill up with a large DOM, and reading it would block.
        let outputPath = NSTemporaryDirectory() + "chromium-\(UUID().uuidString.prefix(8)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = FileHandle.nullDevice
        try process.run()
        let status = try await process.exitStatus(timeout: 60)
        guard status == 0 else { throw E2EError("chromium \(arguments.first ?? "") exited with \(status)") }
        return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }
}
