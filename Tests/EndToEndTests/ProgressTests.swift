import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Progress you can see, on the real `sky run`: a CSV file and a drop folder's backlog in
/// flight appear in `sky progress --json`, as a bar that moves on the dashboard in headless
/// Chromium, and as a live bar in a real terminal (tmux).
@Suite(.timeLimit(.minutes(3)))
struct ProgressTests {
    static let routes = [
        "bulk.yaml": "name: bulk\nfrom:\n  - csv: { dir: drop/bulk, concurrency: 2 }\nsteps:\n  - service: slow\n    timeout: 2s\n",
        "many.yaml": "name: many\nfrom:\n  - files: { dir: drop/many, pattern: \"*.json\", concurrency: 1 }\nsteps:\n  - service: slow\n    timeout: 2s\n",
    ]

    func progress(_ scratch: Scratch) async throws -> [ProgressBoard.Snapshot] {
        let run = try await Command.run([SkyProcess.binary, "progress", "--json", "--registry", scratch.registry])
        guard run.status == 0, let line = run.output.split(separator: "\n").last, let json = try? JSONParser.parse(String(line)) else {
            throw E2EError("sky progress --json: \(run.output)")
        }
        return (json["progress"]?.arrayValue ?? []).compactMap(ProgressBoard.Snapshot.init(json:))
    }

    /// The `data-fraction` of the CSV bar in a dashboard page.
    static func fraction(in dom: String) -> Double? {
        guard let row = dom.range(of: #"data-kind="csv""#) else { return nil }
        let rest = dom[row.upperBound...]
        guard let start = rest.range(of: #"data-fraction=""#) else { return nil }
        return Double(rest[start.upperBound...].prefix { $0 != "\"" })
    }

    @Test func csvFilesAndBacklogsShowABarThatMovesInTheTerminalAndTheBrowser() async throws {
        let scratch = try Scratch()
        for (name, yaml) in Self.routes { try scratch.writeRoute(name, yaml) }
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")

        // 1,000 rows of 50 ms, two batches at a time: about 25 s of work, time for the browser
        // and the terminal to see the bar move.
        let csv = "sleepMs,text\n" + (0..<1000).map { "50,row \($0)" }.joined(separator: "\n") + "\n"
        try FileManager.default.createDirectory(atPath: scratch.path + "/drop/bulk", withIntermediateDirectories: true)
        try csv.write(toFile: scratch.path + "/drop/bulk/.big.tmp", atomically: false, encoding: .utf8)
        #expect(rename(scratch.path + "/drop/bulk/.big.tmp", scratch.path + "/drop/bulk/big.csv") == 0)

        var first: ProgressBoard.Snapshot?
        #expect(await eventually(within: 15) {
            first = try? await self.progress(scratch).first { $0.kind == .csv && $0.done > 0 }
            return first != nil
        })
        let started = try #require(first)
        #expect(started.route == "bulk" && started.name.hasSuffix("big.csv") && started.unit == "rows")
        #expect(started.bytesTotal == Int64(csv.utf8.count) && started.fraction > 0 && started.fraction < 1)
        #expect(started.rate > 0 && started.secondsLeft != nil)

        // The dashboard's bar, in Chromium, then again: it moved.
        let browser = try Chromium()
        let before = try #require(Self.fraction(in: try await browser.dom(of: page)), "no CSV bar on the dashboard")
        var after = before
        #expect(await eventually(within: 15) {
            after = (try? await browser.dom(of: page)).flatMap(Self.fraction(in:)) ?? after
            return after > before
        }, "the bar stayed at \(before)")
        try await browser.screenshot(of: page, to: Chromium.artifacts + "/dashboard-progress.png")

        // The terminal: a live bar that redraws with a new percentage.
        let tmux = CLITests.Tmux()
        defer { Task { await tmux.kill() } }
        try await tmux.start("\(SkyProcess.binary) progress --registry \(scratch.registry) --interval 0.5", in: scratch.path)
        try await tmux.expect("rows/s")
        func percent() async throws -> Int? {
            // The last bar drawn: earlier frames may be in the scrollback.
            let screen = try await tmux.screen()
            guard let bar = screen.split(separator: "\n").last(where: { $0.contains("] ") && $0.contains("rows") }),
                let close = bar.range(of: "] ")
            else { return nil }
            return Int(bar[close.upperBound...].prefix { $0.isNumber })
        }
        let shown = try await percent()
        let screen = try await tmux.screen()
        #expect(shown != nil, "no bar on the terminal: \(screen)")
        var later = shown
        #expect(await eventually(within: 15) {
            later = (try? await percent()) ?? later
            return (later ?? 0) > (shown ?? 100)
        }, "the terminal bar stayed at \(shown ?? -1)%")

        // A drop folder's backlog: files done of files found.
        try FileManager.default.createDirectory(atPath: scratch.path + "/drop/many", withIntermediateDirectories: true)
        for index in 0..<30 {
            let temporary = scratch.path + "/drop/many/.f\(index).tmp"
            try #"{"sleepMs": 100, "n": \#(index)}"#.write(toFile: temporary, atomically: false, encoding: .utf8)
            #expect(rename(temporary, scratch.path + "/drop/many/f\(index).json") == 0)
        }
        var backlog: ProgressBoard.Snapshot?
        #expect(await eventually(within: 15) {
            backlog = try? await self.progress(scratch).first { $0.kind == .files && $0.done > 0 }
            return backlog != nil
        })
        #expect(backlog.map { $0.route == "many" && $0.unit == "files" && ($0.total ?? 0) >= $0.done && $0.fraction <= 1 } == true, "\(String(describing: backlog))")

        // When all is done, nothing is in flight, and every row was answered.
        #expect(await eventually(within: 60) { (try? await self.progress(scratch))?.isEmpty == true })
        let done = try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/drop/many/.done").filter { $0.hasSuffix(".json") }
        #expect(done.count == 30)
    }
}
