import Foundation
import RegistryKit
import SkyLib
import SkyTestSupport
import Testing

/// Failed work you can see and send again, with the real `sky` binary, real files, RabbitMQ,
/// curl-like HTTP and Chromium: every source's failures in one list (`sky failed`), shown,
/// dropped with a reason, redriven once however many operators ask at once, failing again with
/// one attempt more, and succeeding once the route is fixed, each back where it belongs.
@Suite(.timeLimit(.minutes(3)))
struct FailedWorkTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A route whose `billing` step (a service nobody runs) fails the inputs of kind `bill`
    /// (`BILL` once `uppercase` has run); the fixed route calls `reverse` there instead.
    static func route(queue: String, fixed: Bool) -> String {
        """
        name: orders
        keepFailed: true
        from:
          - files: { dir: drop/orders, pattern: "*.json" }
          - csv: { dir: drop/rows }
          - stomp: { destination: \(queue), deadLetter: \(queue).dead }
        steps:
          - service: uppercase
          - service: \(fixed ? "reverse" : "billing")
            when: { path: kind, equals: BILL }
        """
    }

    func sky(_ arguments: [String], _ scratch: Scratch, name: String) async throws -> (status: Int32, lines: [String]) {
        let process = try SkyProcess(arguments + ["--registry", scratch.registry], name: name, directory: scratch.path)
        let status = try await process.waitForExit(timeout: 60)
        return (status, process.stdoutLines)
    }

    func items(_ scratch: Scratch, all: Bool = false) async throws -> [FailedItem] {
        let listed = try await self.sky(["failed", "list", "--json", "--limit", "1000"] + (all ? ["--all"] : []), scratch, name: "failed-list")
        return (try JSONParser.parse(listed.lines.joined()).arrayValue ?? []).compactMap(FailedItem.init(json:))
    }

    func write(_ text: String, to folder: String, as name: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try text.write(toFile: folder + "/." + name, atomically: false, encoding: .utf8)
        _ = rename(folder + "/." + name, folder + "/" + name)
    }

    @Test func everySourcesFailuresAreListedShownDroppedAndRedrivenOnce() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-failed-\(UUID().uuidString.prefix(8).lowercased())"
        try scratch.writeRoute("orders.yaml", Self.route(queue: queue, fixed: false))
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })
        let (files, rows) = (scratch.path + "/drop/orders", scratch.path + "/drop/rows")

        try self.write(#"{"text":"file a","kind":"none"}"#, to: files, as: "a.json")
        try self.write(#"{"text":"file b","kind":"bill"}"#, to: files, as: "b.json")
        try self.write("text,kind\nrow two,none\nrow three,bill\nrow four,none\nrow five,bill\nrow six,none\n", to: rows, as: "r.csv")
        let send = try StompTests().python(["send", queue, queue + ".out", #"{"text":"message zero","kind":"none"}"#, #"{"text":"message one","kind":"bill"}"#], in: scratch)
        try send.run()
        #expect(try await send.exitStatus() == 0)
        // The failing request from curl: the caller's answer is the route's error, as always.
        let curl = try await Command.run([
            "/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
            "--data", #"{"text":"http one","kind":"bill"}"#, "\(base)/routes/orders",
        ])
        #expect(curl.status == 0 && curl.output.hasSuffix("\n502") && curl.output.contains(#""code":"step_failed""#), "\(curl.output)")
        #expect(try await HTTP.post("\(base)/routes/orders", #"{"text":"http two","kind":"none"}"#).json == ["text": "HTTP TWO", "kind": "NONE"])

        // One list for every source: only the inputs that failed, each once.
        var listed: [FailedItem] = []
        #expect(await eventually(within: 20) { listed = (try? await self.items(scratch)) ?? []; return listed.count == 5 }, "\(listed.map(\.id))")
        let bySource = Dictionary(grouping: listed, by: \.source)
        #expect(bySource[.files]?.map { $0.details["file"] } == ["b.json"])
        #expect(Set(bySource[.csv]?.compactMap { $0.details["line"] } ?? []) == ["3", "5"])
        #expect(bySource[.stomp]?.first.flatMap { $0.details["headers"] }?.contains(#""correlation-id":"1""#) == true)
        #expect(bySource[.http]?.first?.input?.contains("http one") == true)
        #expect(listed.allSatisfy { $0.state == .failed && $0.attempts == 1 && $0.route == "orders" && $0.code == "step_failed" && $0.service == "billing" })
        // Parked as before, too.
        #expect(FileManager.default.fileExists(atPath: files + "/.failed/b.json"))
        let rejects = try String(contentsOfFile: rows + "/.out/r.csv.rejects.csv", encoding: .utf8)
        #expect(rejects.hasPrefix("line,error,row\n3,") && rejects.contains("\n5,"))

        let fifth = try #require(bySource[.csv]?.first { $0.details["line"] == "5" })
        let shown = try await self.sky(["failed", "show", fifth.shortID], scratch, name: "failed-show")
        #expect(shown.status == 0)
        #expect(shown.lines.contains("input     r.csv:5") && shown.lines.contains("row five,bill") && shown.lines.contains("attempts  1"), "\(shown.lines)")
        #expect(shown.lines.contains { $0.hasPrefix("error     step_failed: ") && $0.contains("billing") })

        // Dropped with a reason: gone from the open list, kept with it, counted by the node.
        let file = try #require(bySource[.files]?.first)
        var done = try await self.sky(["failed", "drop", file.shortID, "--reason", "customer cancelled"], scratch, name: "failed-drop")
        #expect(done.status == 0 && done.lines.first?.hasPrefix("dropped  \(file.shortID) orders: customer cancelled") == true, "\(done.lines)")
        done = try await self.sky(["failed", "drop", file.shortID, "--reason", "again"], scratch, name: "failed-drop-again")
        #expect(done.status == 1 && done.lines.first?.hasPrefix("not dropped: \(file.shortID) is dropped") == true, "\(done.lines)")
        #expect(try await self.items(scratch).count == 4)
        #expect(try await self.items(scratch, all: true).first { $0.id == file.id }?.note == "customer cancelled")
        #expect(await eventually(within: 10) { (try? await HTTP.get("\(base)/debug/vars").json["failed-dropped"]) == 1 })
        #expect(sky.stderr.contains("failed input dropped") && sky.stderr.contains("reason=customer cancelled"))

        // Redriven while the route is still broken: it fails again, one attempt more.
        let request = try #require(bySource[.http]?.first)
        done = try await self.sky(["failed", "redrive", request.shortID, "--wait", "--timeout", "20"], scratch, name: "failed-redrive-early")
        #expect(done.status == 1)
        #expect(done.lines.contains { $0.hasPrefix("failed   \(request.shortID) orders: attempt 2: ") }, "\(done.lines)")
        let again = try await self.items(scratch).first { $0.id == request.id }
        #expect(again?.attempts == 2 && again?.state == .failed)

        // The route fixed, two operators redrive everything at once: each input goes once.
        try scratch.writeRoute("orders.yaml", Self.route(queue: queue, fixed: true))
        #expect(await eventually(within: 5) { (try? await HTTP.get("\(base)/routes/orders").json["revision"]) == 2 })
        let operators = try (0..<2).map { index in
            try SkyProcess(["failed", "redrive", "--route", "orders", "--wait", "--timeout", "30", "--registry", scratch.registry], name: "operator\(index)", directory: scratch.path)
        }
        var asked = 0
        for process in operators {
            #expect(try await process.waitForExit(timeout: 60) == 0, "\(process.stdoutLines)")
            let line = process.stdoutLines.first ?? ""
            asked += Int(line.split(separator: " ").dropFirst(3).first ?? "") ?? -100
        }
        #expect(asked == 4, "\(operators.map(\.stdoutLines))")
        var all: [FailedItem] = []
        #expect(await eventually(within: 30) {
            all = (try? await self.items(scratch, all: true)) ?? []
            return all.filter { $0.state == .done }.count == 4
        }, "\(all.map { "\($0.shortID) \($0.state) \($0.note)" })")
        #expect(all.first { $0.id == file.id }?.state == .dropped)
        #expect(all.first { $0.id == request.id }?.note.contains(#"ran again and succeeded: {"kind":"LLIB","text":"ENO PTTH"}"#) == true)
        #expect(try await self.items(scratch).isEmpty, "nothing left open")

        // Each input is back where it belongs: the rows answered under their own lines, the
        // message answered on its reply queue, the dropped file still parked.
        // (One redrive file, or one per operator's share when the two asked for different rows.)
        let outputs = try FileManager.default.contentsOfDirectory(atPath: rows + "/.out").filter { $0.hasPrefix("r.redrive-") && $0.hasSuffix(".results.jsonl") }
        #expect((1...2).contains(outputs.count))
        let answers = try outputs.flatMap { try String(contentsOfFile: rows + "/.out/" + $0, encoding: .utf8).split(separator: "\n") }
            .map { try JSONParser.parse(String($0)) }.sorted { ($0["line"]?.intValue ?? 0) < ($1["line"]?.intValue ?? 0) }
        #expect(answers.map { $0["line"] } == [3, 5])
        #expect(answers.map { $0["result"]?["text"] } == ["EERHT WOR", "EVIF WOR"])
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: rows + "/.redrive")) ?? []).isEmpty)
        #expect(FileManager.default.fileExists(atPath: files + "/.failed/b.json") && FileManager.default.fileExists(atPath: files + "/.done/a.json"))
        let summary = try await StompTests().drain(queue, expecting: 3, scratch: scratch)
        #expect(summary["replies"] == ["0", "1"] && summary["dead"] == ["1"], "\(summary)")

        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect(vars["failed-recorded"] == 6 && vars["failed-redriven"] == 5 && vars["failed-redrive-succeeded"] == 4 && vars["failed-dropped"] == 1, "\(vars)")
        let metrics = try await HTTP.get("\(base)/metrics").text
        #expect(metrics.contains(#"skynet_var{name="failed-redriven"} 5"#) && metrics.contains(#"skynet_var{name="failed-dropped"} 1"#))
    }

    /// The dashboard's failed work per route, and its redrive button clicked in Chromium.
    @Test func theDashboardShowsFailedWorkAndItsRedriveButtonSendsItAgain() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let route = "name: docs\nfrom:\n  - files: { dir: drop/docs, pattern: \"*.json\" }\nsteps:\n  - service: %@\n"
        try scratch.writeRoute("docs.yaml", String(format: route, "billing"))
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let folder = scratch.path + "/drop/docs"
        for index in 0..<3 { try self.write(#"{"text":"doc \#(index)"}"#, to: folder, as: "d\(index).json") }
        #expect(await eventually(within: 20) { ((try? await self.items(scratch)) ?? []).count == 3 })
        try scratch.writeRoute("docs.yaml", String(format: route, "uppercase"))
        #expect(await eventually(within: 5) { (try? await HTTP.get("\(base)/routes/docs").json["revision"]) == 2 })

        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        let dom = try await Chromium().dom(of: page)
        #expect(dom.contains(#"<tr class="failed" data-failed-route="docs"><td>docs</td><td class="num failed-count">3</td>"#), "\(dom.prefix(3000))")
        #expect(dom.contains(#"data-redrive="docs""#) && dom.contains("files drop/docs"))

        // A form another site posts (no Skynet-Action header) is refused, and redrives nothing.
        let forged = try await Command.run(["/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", page + "failed/redrive?route=docs"])
        #expect(forged.output.hasSuffix("\n400") && forged.output.contains("Skynet-Action: redrive"), "\(forged.output)")
        #expect(try await self.items(scratch).filter { $0.state == .failed }.count == 3)

        let click = Process()
        click.executableURL = URL(fileURLWithPath: StompTests.python)
        click.arguments = [
            Self.root + "/Tests/EndToEndTests/Python/cdp_click.py", try Chromium().binary, page, #"button[data-redrive="docs"]"#,
            #"document.querySelector('tr[data-failed-route="docs"]') === null"#, "30",
        ]
        let outputPath = scratch.path + "/click.json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        click.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        try click.run()
        #expect(try await click.exitStatus(timeout: 90) == 0)
        let result = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: outputPath)))
        #expect(result["clicked"] == true && result["done"] == true, "\(result["html"]?.stringValue?.prefix(3000) ?? "")")
        #expect(result["html"]?.stringValue?.contains("none waiting") == true)

        var all: [FailedItem] = []
        #expect(await eventually(within: 20) { all = (try? await self.items(scratch, all: true)) ?? []; return all.count == 3 && all.allSatisfy { $0.state == .done } })
        #expect(all.allSatisfy { $0.note == "ran again and succeeded" }, "\(all.map(\.note))")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder + "/.done")) == ["d0.json", "d1.json", "d2.json"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/.failed").isEmpty)
        let answer = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: folder + "/.out/d1.json.json")))
        #expect(answer["text"] == "DOC 1")
    }

    /// A redrive a node took and never finished (it stopped) can be asked again once five
    /// minutes old; a younger one is running, and `sky failed redrive` says so.
    @Test func aRedriveLeftRunningCanBeAskedAgainAfterFiveMinutes() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let registry = try await scratch.openRegistry()
        let stale = FailedItem(route: "docs", source: .files, resource: "drop/docs", input: nil, details: ["file": "a.json"], code: "step_failed", message: "no", node: "gone")
        let fresh = FailedItem(route: "docs", source: .files, resource: "drop/docs", input: nil, details: ["file": "b.json"], code: "step_failed", message: "no", node: "gone")
        try await registry.recordFailed([stale, fresh])
        _ = try await registry.moveFailed(id: stale.id, from: [.failed], updatedBefore: nil, to: .running, actor: "gone", note: "", now: Date().addingTimeInterval(-301))
        _ = try await registry.moveFailed(id: fresh.id, from: [.failed], updatedBefore: nil, to: .running, actor: "gone", note: "", now: Date())
        let again = try await self.sky(["failed", "redrive", stale.id], scratch, name: "redrive-stale")
        #expect(again.status == 0 && again.lines == ["redrive asked for 1 input; the node running each source puts it back"], "\(again.lines)")
        let busy = try await self.sky(["failed", "redrive", fresh.id], scratch, name: "redrive-fresh")
        #expect(busy.status == 1 && busy.lines.first == "not redriven: \(fresh.shortID) is running (by gone)", "\(busy.lines)")
    }
}
