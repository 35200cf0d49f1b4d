import Foundation
import RegistryKit
import RouteModel
import SkyLib
import SkyTestSupport
import Testing

/// Reloads you can confirm, with the real `sky` binary: `sky routes push --wait` returns only
/// once every router on the registry's routes serves the push, `sky routes status` names the
/// routers that do not and why, a request in flight finishes on the revision it started with
/// (its trace says which), and a refused edit keeps the last good revision serving, shown in
/// `sky routes status`, `GET /routes` and the dashboard (in Chromium).
@Suite(.timeLimit(.minutes(3)))
struct ReloadTests {
    func service(_ name: String, _ scratch: Scratch) async throws -> SkyProcess {
        let process = try SkyProcess(["service", name, "--registry", scratch.registry, "--ttl", "5", "--heartbeat", "0.3"], name: name, directory: scratch.path)
        _ = try await process.waitForWord(after: "ready at ")
        return process
    }

    func sky(_ arguments: [String], _ scratch: Scratch, name: String) async throws -> (status: Int32, lines: [String]) {
        let process = try SkyProcess(arguments + ["--registry", scratch.registry], name: name, directory: scratch.path)
        let status = try await process.waitForExit()
        return (status, process.stdoutLines)
    }

    @Test func pushWaitReturnsOnceEveryRouterServesThePushAndNamesThoseThatDoNot() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let upper = try await self.service("uppercase", scratch)
        let reverse = try await self.service("reverse", scratch)
        var routers: [(process: SkyProcess, base: String)] = []
        for index in 0..<2 {
            let router = try SkyProcess(
                ["router", "--routes", "registry", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router\(index)", directory: scratch.path
            )
            routers.append((router, try await router.waitForWord(after: "router ready at ")))
        }
        // A router on a folder: a push never reaches it, so --wait does not wait for it.
        try FileManager.default.createDirectory(atPath: scratch.path + "/Local", withIntermediateDirectories: true)
        try "name: local\nsteps:\n  - service: uppercase\n".write(toFile: scratch.path + "/Local/local.yaml", atomically: true, encoding: .utf8)
        let folderRouter = try SkyProcess(["router", "--routes", "Local", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "folder", directory: scratch.path)
        _ = try await folderRouter.waitForWord(after: "router ready at ")
        defer { for process in routers.map(\.process) + [folderRouter, upper, reverse] { process.signal(SIGKILL) } }

        // Once --wait returns, every router answers with the push: no polling here.
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        var push = try await self.sky(["routes", "push", "Routes", "--wait"], scratch, name: "push1")
        #expect(push.status == 0, "\(push.lines)")
        #expect(push.lines.contains { $0.hasPrefix("confirmed: 2 routers serve the pushed revisions") }, "\(push.lines)")
        for router in routers { #expect(try await HTTP.post("\(router.base)/routes/shout", #"{"text":"abc"}"#).json == ["text": "ABC"]) }

        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: reverse\n")
        push = try await self.sky(["routes", "push", "Routes", "--wait"], scratch, name: "push2")
        #expect(push.status == 0, "\(push.lines)")
        for router in routers {
            #expect(try await HTTP.post("\(router.base)/routes/shout", #"{"text":"abc"}"#).json == ["text": "cba"])
            #expect(try await HTTP.get("\(router.base)/routes").json["source"] == "registry")
        }

        var status = try await self.sky(["routes", "status"], scratch, name: "status")
        #expect(status.status == 0, "\(status.lines)")
        #expect(status.lines.filter { $0.contains(" registry ") && $0.contains("shout@2") && $0.hasSuffix("in step") }.count == 2, "\(status.lines)")
        #expect(status.lines.contains { $0.contains(" Local ") && $0.contains("local@1") && $0.hasSuffix("in step") }, "\(status.lines)")

        // A stored revision the routers refuse (written past `sky routes push`'s validation, as
        // another version of sky could): named with file and line, the last good one serving.
        let registry = try await scratch.openRegistry()
        _ = try await registry.storeRoutes(
            [StoredRoute(name: "shout", yaml: "name: shout\nsteps:\n  - service: reverse\n    merge: maybe\n", file: "Routes/shout.yaml")], prune: false
        )
        var json: JSONValue = [:]
        #expect(await eventually(within: 10) {
            guard let shown = try? await self.sky(["routes", "status", "--json"], scratch, name: "status-json") else { return false }
            status = shown
            json = (try? JSONParser.parse(shown.lines.joined())) ?? [:]
            return (json["routers"]?.arrayValue ?? []).filter { $0["problems"]?.arrayValue?.isEmpty == false }.count == 2
        })
        #expect(status.status == 1)
        #expect(json["inStep"] == false && json["registry"]?["shout"] == 3)
        let refused = (json["routers"]?.arrayValue ?? []).filter { $0["source"] == "registry" }
        #expect(refused.count == 2)
        for router in refused {
            let state = router["state"]?.stringValue ?? ""
            #expect(state.contains("shout: revision 2 served, registry has 3"), "\(state)")
            #expect(state.contains("refused registry:Routes/shout.yaml:4:12: 'merge' must be true or false (serving revision 2, the last good one)"), "\(state)")
        }
        for router in routers { #expect(try await HTTP.post("\(router.base)/routes/shout", #"{"text":"abc"}"#).json == ["text": "cba"]) }

        // A router that does not answer is named, and --wait gives up after its timeout.
        let silent = NodeRecord(kind: .router, service: "sky-router", address: "127.0.0.1:1", status: .ready, ttl: 3600)
        try await registry.register(silent)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        push = try await self.sky(["routes", "push", "Routes", "--wait", "--timeout", "1.5"], scratch, name: "push3")
        #expect(push.status == 1, "\(push.lines)")
        #expect(push.lines.contains("not confirmed after 1.5 s: 1 of 3 routers do not serve the push"), "\(push.lines)")
        #expect(push.lines.contains { $0.hasPrefix("  127.0.0.1:1 (") && $0.contains("unreachable: ") }, "\(push.lines)")
        // The two live routers did take it.
        for router in routers { #expect(try await HTTP.post("\(router.base)/routes/shout", #"{"text":"abc"}"#).json == ["text": "ABC"]) }
    }

    /// A request running when its route is edited finishes on the revision it started with,
    /// and its trace says so; the next request runs the new revision. A broken edit then keeps
    /// that revision serving and is shown, with its file and line, by `GET /routes`,
    /// `sky routes status` and the dashboard in Chromium.
    @Test func aRequestInFlightFinishesOnItsRevisionAndARefusedEditIsShownEverywhere() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let route = "name: slowly\nsteps:\n  - service: slow\n  - service: %@\n"
        try scratch.writeRoute("slowly.yaml", String(format: route, "uppercase"))
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")

        let first = "4bf92f3577b34da6a3ce929d0e0e4736"
        async let inFlight = HTTP.post(
            "\(base)/routes/slowly", #"{"text":"abc","sleepMs":1500}"#, headers: [("traceparent", "00-\(first)-00f067aa0ba902b7-01")]
        )
        #expect(await eventually(within: 5) {
            ((try? await HTTP.get("\(base)/debug/stats").json["routes"]?.arrayValue?.first?["inflight"]?.intValue) ?? 0) == 1
        })
        try scratch.writeRoute("slowly.yaml", String(format: route, "reverse"))
        #expect(await eventually(within: 3) { (try? await HTTP.get("\(base)/routes/slowly").json["revision"]) == 2 })
        let second = "5bf92f3577b34da6a3ce929d0e0e4736"
        let next = try await HTTP.post("\(base)/routes/slowly", #"{"text":"abc","sleepMs":1}"#, headers: [("traceparent", "00-\(second)-00f067aa0ba902b7-01")])
        #expect(next.json["text"] == "cba")
        let old = try await inFlight
        #expect(old.json["text"] == "ABC", "the request in flight ran the revision it started with")

        for (trace, revision) in [(first, 1), (second, 2)] {
            var root: Span?
            #expect(await eventually(within: 10) {
                let shown = try? await self.sky(["trace", trace, "--json"], scratch, name: "trace")
                let spans = ((try? JSONParser.parse(shown?.lines.first ?? ""))?.arrayValue ?? []).compactMap(Span.init(json:))
                root = spans.first { $0.kind == .route }
                return root != nil
            })
            #expect(root?.revision == revision, "trace \(trace)")
            let tree = try await self.sky(["trace", trace], scratch, name: "trace-tree")
            #expect(tree.lines.contains { $0.hasPrefix("route slowly (revision \(revision))") }, "\(tree.lines)")
        }

        // A broken edit: the last good revision serves, and every view names file and line.
        try scratch.writeRoute("slowly.yaml", "name: slowly\nsteps:\n  - service: slow\n    retry: { attempts: zero }\n")
        #expect(await eventually(within: 3) { ((try? await HTTP.get("\(base)/routes").json["problems"]?.arrayValue) ?? []).count == 1 })
        // As curl gets it.
        let listed = try await Command.run(["/usr/bin/curl", "-s", "\(base)/routes"])
        let problem = try #require(try JSONParser.parse(listed.output)["problems"]?.arrayValue?.first)
        #expect(problem["file"] == "Routes/slowly.yaml" && problem["line"] == 4 && problem["serving"] == 2 && problem["route"] == "slowly")
        #expect(try await HTTP.post("\(base)/routes/slowly", #"{"text":"abc","sleepMs":1}"#).json["text"] == "cba")
        #expect((try await HTTP.get("\(base)/debug/vars").json["routes-reload-errors"]?.intValue ?? 0) >= 1)
        let status = try await self.sky(["routes", "status"], scratch, name: "status")
        #expect(status.status == 1)
        #expect(status.lines.contains { $0.contains("slowly@2") && $0.contains("refused Routes/slowly.yaml:4:") && $0.contains("(serving revision 2, the last good one)") }, "\(status.lines)")

        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        let browser = try Chromium()
        var dom = ""
        #expect(await eventually(within: 15) {
            dom = (try? await browser.dom(of: page)) ?? ""
            return dom.contains(#"data-route-problem="Routes/slowly.yaml""#)
        })
        #expect(dom.contains("route file Routes/slowly.yaml:4:"), "\(dom.prefix(2000))")
        #expect(dom.contains("revision 2 of slowly (the last good one) serves meanwhile"))

        // Fixed: the problem goes from every view.
        try scratch.writeRoute("slowly.yaml", String(format: route, "uppercase"))
        #expect(await eventually(within: 3) { ((try? await HTTP.get("\(base)/routes").json["problems"]?.arrayValue) ?? [1]).isEmpty })
        #expect(try await self.sky(["routes", "status"], scratch, name: "status-fixed").status == 0)
    }

    /// The first inputs after a reload are never lost: the route is edited eight times, each
    /// edit changing its steps and every source's settings (so each initiator drains and starts
    /// again), and right after each edit files, a CSV file and STOMP messages arrive. Every
    /// file is answered once, every row once in its CSV's results, every message answered (or
    /// dead-lettered when it has no text), and nothing is parked in `.failed/`.
    @Test func theFirstInputsAfterEachReloadAreAllAnswered() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let queue = "/queue/sky-reload-\(UUID().uuidString.prefix(8).lowercased())"
        func route(_ revision: Int) -> String {
            let even = revision % 2 == 0
            return """
                name: mixed
                from:
                  - files: { dir: drop/in, pattern: "*.json", concurrency: \(even ? 4 : 2) }
                  - csv: { dir: drop/rows, concurrency: \(even ? 2 : 4) }
                  - stomp: { destination: \(queue), deadLetter: \(queue).dead, prefetch: \(even ? 16 : 8) }
                steps:
                  - service: slow
                \(even ? "" : "    retry: { attempts: 2, backoff: 10ms }")
                  - service: wordcount
                    merge: true
                """
        }
        try scratch.writeRoute("mixed.yaml", route(0))
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 20) { sky.stderr.contains("subscribed") })
        let (files, rows) = (scratch.path + "/drop/in", scratch.path + "/drop/rows")
        for folder in [files, rows] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let stomp = StompTests()

        let edits = 8
        for edit in 1...edits {
            let started = ContinuousClock.now
            try scratch.writeRoute("mixed.yaml", route(edit))
            for index in 0..<4 {
                let name = "e\(edit)-\(index).json"
                try #"{"text":"file \#(edit)-\#(index)","sleepMs":30}"#.write(toFile: files + "/.\(name)", atomically: false, encoding: .utf8)
                _ = rename(files + "/.\(name)", files + "/" + name)
            }
            let csv = "text,sleepMs\n" + (0..<20).map { "row \(edit)-\($0),10\n" }.joined()
            try csv.write(toFile: rows + "/.e\(edit).csv", atomically: false, encoding: .utf8)
            _ = rename(rows + "/.e\(edit).csv", rows + "/e\(edit).csv")
            let publish = try stomp.python(["publish", queue, queue + ".out", "12", "30", "\((edit - 1) * 12)"], in: scratch)
            try publish.run()
            #expect(try await publish.exitStatus() == 0)
            try await Task.sleep(until: started + .milliseconds(600))
        }
        #expect(await eventually(within: 5) { (try? await HTTP.get("\(base)/routes/mixed").json["revision"]) == .int(Int64(edits + 1)) })

        // Files: each answered once, none failed.
        #expect(await eventually(within: 60) { ((try? FileManager.default.contentsOfDirectory(atPath: files + "/.done")) ?? []).count == edits * 4 })
        let answers = try FileManager.default.contentsOfDirectory(atPath: files + "/.out").filter { $0.hasSuffix(".json") }
        #expect(answers.count == edits * 4)
        for answer in answers {
            let json = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: files + "/.out/" + answer)))
            #expect(json["words"] == 2, "\(answer): \(json)")
        }
        // CSV: every row of every file answered once, in order, none rejected.
        #expect(await eventually(within: 60) { ((try? FileManager.default.contentsOfDirectory(atPath: rows + "/.done")) ?? []).count == edits })
        for edit in 1...edits {
            let results = try String(contentsOfFile: rows + "/.out/e\(edit).csv.results.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(results.compactMap { try? JSONParser.parse(String($0))["line"]?.intValue } == (2...21).map(Int64.init), "e\(edit).csv")
            #expect(try String(contentsOfFile: rows + "/.out/e\(edit).csv.rejects.csv", encoding: .utf8) == "line,error,row\n")
        }
        for folder in [files, rows] {
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: folder + "/.failed")) ?? []).isEmpty, "\(folder)/.failed")
        }
        // STOMP: every message answered, or dead-lettered for having no text (message 50).
        try await stomp.expectEveryMessageAnswered(queue, total: edits * 12, scratch: scratch)
        #expect((try await HTTP.get("\(base)/debug/vars").json["routes-reload-errors"]?.intValue ?? 0) == 0)
    }

    /// `sky run --routes registry`: one process serving what is pushed, the walk-through's setup.
    @Test func skyRunServesTheRegistrysRoutes() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let sky = try SkyProcess(["run", "--routes", "registry", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(sky.stdoutLines.contains { $0.hasPrefix("  routes     0 from the registry") }, "\(sky.stdoutLines)")
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        let push = try await self.sky(["routes", "push", "--wait", "Routes"], scratch, name: "push")
        #expect(push.status == 0 && push.lines.contains { $0.hasPrefix("confirmed: 1 router serves the pushed revisions") }, "\(push.lines)")
        #expect(try await HTTP.post("\(base)/routes/shout", #"{"text":"abc"}"#).json == ["text": "ABC"])
    }
}
