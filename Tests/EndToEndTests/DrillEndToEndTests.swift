import Foundation
import RegistryKit
import SkyLib
import SkyTestSupport
import Testing

/// `sky drill` against real clusters: `sky run` with service instances in processes of their
/// own, and a cluster of one process per role (initiator, services, reaper) on the MongoDB-wire
/// registry and RabbitMQ. Each drill's ledger is checked against what the inputs left behind
/// (answers on disk, the broker's queues), read by other means than the drill's.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct DrillEndToEndTests {
    /// Runs `sky drill ARGUMENTS --json` in `scratch` to its end: its exit status, its JSON
    /// report and what it said on standard error.
    func drill(_ scratch: Scratch, _ arguments: [String]) async throws -> (status: Int32, report: JSONValue, stderr: String) {
        let report = scratch.path + "/drill-\(UUID().uuidString.prefix(6)).json"
        let process = try SkyProcess(
            ["drill", "--registry", scratch.registry, "--json", "--report", report, "--logs", scratch.path + "/drill-logs"] + arguments,
            name: "drill", directory: scratch.path
        )
        let status = try await process.waitForExit(timeout: 120)
        let json = (try? String(contentsOfFile: report, encoding: .utf8)).flatMap { try? JSONParser.parse($0) } ?? .null
        return (status, json, process.stderr)
    }

    /// A service instance in a process of its own, heartbeating fast so a killed one is noticed.
    func service(_ name: String, _ scratch: Scratch) throws -> SkyProcess {
        try SkyProcess(["service", name, "--registry", scratch.registry, "--ttl", "2", "--heartbeat", "0.3", "--log-level", "warning"], name: name, directory: scratch.path)
    }

    /// Waits until `count` instances of `service` are ready in the registry.
    func waitForInstances(_ service: String, _ count: Int, in registry: any Registry) async -> Bool {
        await eventually(within: 30) {
            ((try? await registry.nodes()) ?? []).filter { $0.kind == .service && $0.service == service && $0.status == .ready }.count >= count
        }
    }

    /// The pids the drill started again (from its report), so the test can stop them.
    func restartedPIDs(_ report: JSONValue) -> [Int32] {
        (report["events"]?.arrayValue ?? []).compactMap { event in
            guard let detail = event["detail"]?.stringValue, let range = detail.range(of: "started again as pid ") else { return nil }
            return detail[range.upperBound...].split(separator: " ").first.flatMap { Int32($0) }
        }
    }

    /// Files of this drill in `folder`.
    func names(_ folder: String, prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// Also restarts one instance gracefully, and holds the SQLite registry's write lock for 3 s,
    /// longer than the instances' 2 s TTL:
    /// no heartbeat lands, and routing goes on (before RegistryCache judged expiry by the
    /// freshest heartbeat, this failed about a third of the requests with no_instance).
    @Test func aDrillOnSkyRunAccountsForEveryInputWhileAnInstanceIsKilledAndTheRegistryStalls() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(
            ["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--services", "wordcount,audit,echo", "--log-level", "warning"], directory: scratch.path
        )
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let first = try self.service("uppercase", scratch), second = try self.service("uppercase", scratch)
        defer { first.signal(SIGKILL); second.signal(SIGKILL) }
        let registry = try await scratch.openRegistry()
        #expect(await self.waitForInstances("uppercase", 2, in: registry))
        // The router's cache has them too: the route answers.
        #expect(await eventually(within: 20) { (try? await HTTP.post("\(base)/routes/text", #"{"text":"ready?"}"#).status) == 200 })

        let (status, report, stderr) = try await self.drill(scratch, ["--route", "text", "--faults", "kill:uppercase@2s/1s,restart:uppercase@4s,suspend:registry@6s/3s", "--for", "10s", "--rate", "20", "--settle", "30s"])
        defer { for pid in self.restartedPIDs(report) { kill(pid, SIGKILL) } }
        #expect(status == 0, "\(stderr.suffix(2000))\n\(JSONWriter.string(report))")
        #expect(report["passed"]?.boolValue == true)

        // The faults: one of the two instances SIGKILLed, and started again by the drill; the
        // registry's write lock held.
        let events = report["events"]?.arrayValue ?? []
        #expect(events.count == 3)
        #expect(events.last?["detail"]?.stringValue == "held the write lock of \(scratch.path)/registry.sqlite for 3s")
        // The graceful restart: SIGTERM, and started again once it had exited.
        let restart = events.dropFirst().first?["detail"]?.stringValue ?? ""
        #expect(restart.hasPrefix("SIGTERM uppercase at 127.0.0.1:") && restart.contains("; started again as pid "), "\(restart)")
        let detail = events.first?["detail"]?.stringValue ?? ""
        #expect(events.first?["applied"]?.boolValue == true && detail.hasPrefix("SIGKILL uppercase at 127.0.0.1:"), "\(detail)")
        #expect(detail.contains("pid \(first.pid)") || detail.contains("pid \(second.pid)"), "\(detail)")
        #expect(!first.process.isRunning || !second.process.isRunning)
        let restarted = try #require(self.restartedPIDs(report).first)
        // The process it started again registered itself: it is the cluster's again.
        #expect(await eventually(within: 20) { ((try? await registry.nodes()) ?? []).contains { $0.pid == restarted && $0.service == "uppercase" && $0.status == .ready } })

        // The ledger against what the inputs left: every drill file answered on disk and moved
        // to .done, none parked; HTTP's count is the rate times the length.
        let sources = Dictionary(uniqueKeysWithValues: (report["sources"]?.arrayValue ?? []).compactMap { source in source["source"]?.stringValue.map { ($0, source) } })
        #expect(Set(sources.keys) == ["http", "files"])
        let id = report["id"]?.stringValue ?? "?"
        let outs = self.names(scratch.path + "/drop/text/.out", prefix: id)
        let done = self.names(scratch.path + "/drop/text/.done", prefix: id)
        let files = sources["files"]
        #expect(files?["sent"]?.intValue == Int64(done.count) && Int64(outs.count) == files?["answered"]?.intValue, "\(outs.count) answers, \(done.count) done")
        #expect(files?["missingCount"]?.intValue == 0 && self.names(scratch.path + "/drop/text/.failed", prefix: id).isEmpty)
        #expect((190...200).contains(sources["http"]?["sent"]?.intValue ?? 0))
        #expect(sources["http"]?["answered"]?.intValue == sources["http"]?["sent"]?.intValue)
        // Latency per phase: before, during and after the fault, each with inputs in it.
        let phases = (report["phases"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        #expect(phases == [
            "before any fault", "during kill:uppercase@2s/1s #1", "after kill:uppercase@2s/1s #1", "during restart:uppercase@4s #1", "after restart:uppercase@4s #1",
            "during suspend:registry@6s/3s #1", "after suspend:registry@6s/3s #1",
        ])
        #expect((report["phases"]?.arrayValue ?? []).allSatisfy { ($0["sent"]?.intValue ?? 0) > 0 && $0["p50Ms"]?.doubleValue != nil })

        // sky run's memory and descriptors were sampled through the drill.
        let sampled = (report["processes"]?.arrayValue ?? []).first { $0["pid"]?.intValue == Int64(sky.pid) }
        #expect((sampled?["rssKiB"]?.arrayValue?.count ?? 0) >= 4, "\(report["processes"] ?? .null)")

        // The report is in the registry's event log, and the dashboard's drills page shows it.
        let dashboard = try SkyProcess(["dashboard", "--registry", scratch.registry, "--http", "127.0.0.1:0", "--log-level", "warning"], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await HTTP.get("\(String(try await dashboard.waitForWord(after: "dashboard at ").dropLast()))/drills")
        #expect(page.status == 200 && page.text.contains(id) && page.text.contains("PASSED: every input is accounted for") && page.text.contains("during kill:uppercase@2s/1s #1"))
        let api = try await HTTP.get("\(String(try await dashboard.waitForWord(after: "dashboard at ").dropLast()))/api/drills")
        #expect(api.json.arrayValue?.first?["id"]?.stringValue == id)
    }

    /// `sky run` itself stopped gracefully and started again under load: requests in hand are
    /// answered, and those that found the port closed are sent again once it is back.
    @Test func aRouterRestartedUnderLoadLosesNoRequestAndNoFile() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--log-level", "warning"], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        let (status, report, stderr) = try await self.drill(scratch, ["--route", "text", "--faults", "restart:router@2s", "--for", "5s", "--rate", "20", "--settle", "30s"])
        defer { for pid in self.restartedPIDs(report) { kill(pid, SIGKILL) } }
        #expect(status == 0, "\(stderr.suffix(2000))\n\(JSONWriter.string(report))")
        let detail = report["events"]?.arrayValue?.first?["detail"]?.stringValue ?? ""
        #expect(detail.hasPrefix("SIGTERM router at 127.0.0.1:") && detail.contains("pid \(sky.pid); started again as pid "), "\(detail)")
        #expect(try await sky.waitForExit(timeout: 5) == 0)
        for source in report["sources"]?.arrayValue ?? [] {
            #expect(source["sent"]?.intValue == 100 && source["answered"]?.intValue == 100, "\(source)")
        }
    }

    @Test func aDrillRefusesWhatIsNotTheClustersOwnAndSendsNothing() async throws {
        let scratch = try Scratch()
        // uppercase hosted inside sky run's own process: killing it would kill the router.
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--log-level", "warning"], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        let inside = try await self.drill(scratch, ["--route", "text", "--faults", "kill:uppercase@1s", "--for", "2s"])
        #expect(inside.status == 2)
        #expect(inside.stderr.contains("kill:uppercase@1s: uppercase at 127.0.0.1:") && inside.stderr.contains("runs inside a router's process"), "\(inside.stderr)")
        // A node registered by hand for another machine: never touched.
        let added = try await Command.run([SkyProcess.binary, "nodes", "add", "--service", "billing", "--address", "10.77.0.9:9000", "--registry", scratch.registry])
        #expect(added.status == 0, "\(added.output)")
        let elsewhere = try await self.drill(scratch, ["--route", "text", "--faults", "suspend:billing@1s/1s", "--for", "2s"])
        #expect(elsewhere.status == 2)
        #expect(elsewhere.stderr.contains("billing at 10.77.0.9:9000 is not on this machine"), "\(elsewhere.stderr)")
        // A drop folder on a file system larger than the fill limit.
        let fill = try await self.drill(scratch, ["--route", "text", "--faults", "fill:text@1s/1s", "--for", "2s", "--fill-limit", "1"])
        #expect(fill.status == 2 && fill.stderr.contains("more than the 1 MiB a drill fills"), "\(fill.stderr)")
        // A schedule that does not parse names the fault.
        let bad = try await self.drill(scratch, ["--route", "text", "--faults", "kill:uppercase@1s,explode:router@2s", "--for", "2s"])
        #expect(bad.status == 2 && bad.stderr.contains("fault 2 'explode:router@2s': unknown action 'explode'"), "\(bad.stderr)")
        // Nothing was sent by any of them.
        #expect(self.names(scratch.path + "/drop/text", prefix: "drill-").isEmpty)
        #expect(self.names(scratch.path + "/drop/text/.out", prefix: "drill-").isEmpty)
        let vars = try await HTTP.get("\(try await sky.waitForWord(after: "HTTP       "))/debug/vars").json
        #expect((vars["route.text-processed"]?.intValue ?? 0) == 0, "\(vars)")
    }

    /// A drop folder on a small file system of its own, filled for two seconds, and the SQLite
    /// registry's write lock held for two: files dropped before and after are all answered.
    @Test func aFilledDropFolderAndAHeldRegistryLockLoseNoFile() async throws {
        let scratch = try Scratch()
        let small = scratch.path + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mounted = try await Command.run(["/usr/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small])
        try #require(mounted.status == 0, "mount: \(mounted.output)")
        defer { _ = umount2(small, 2) }
        try scratch.writeRoute("small.yaml", "name: small\nfrom:\n  - files: { dir: small, pattern: \"*.json\" }\nsteps:\n  - service: uppercase\n")
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--log-level", "warning"], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        let (status, report, stderr) = try await self.drill(
            scratch, ["--route", "small", "--source", "files", "--faults", "fill:small@1s/2s,suspend:registry@4s/2s", "--for", "7s", "--rate", "20", "--settle", "30s"]
        )
        #expect(status == 0, "\(stderr.suffix(2000))\n\(JSONWriter.string(report))")
        let events = report["events"]?.arrayValue ?? []
        #expect(events.count == 2 && events.allSatisfy { $0["applied"]?.boolValue == true }, "\(events)")
        #expect(events.first?["detail"]?.stringValue?.hasPrefix("filled \(small)'s file system") == true)
        #expect(events.last?["detail"]?.stringValue == "held the write lock of \(scratch.path)/registry.sqlite for 2s")
        let files = report["sources"]?.arrayValue?.first
        // Files are dropped only where there is room: fewer than 20 a second over 7 s.
        #expect((files?["sent"]?.intValue ?? 0) > 60 && (files?["sent"]?.intValue ?? 0) < 140, "\(files ?? .null)")
        #expect(files?["answered"]?.intValue == files?["sent"]?.intValue && files?["missingCount"]?.intValue == 0)
        // The filler is gone: the folder has its room back.
        #expect(!FileManager.default.fileExists(atPath: small + "/.skynet-drill-fill"))
    }

    /// One process per role on the MongoDB-wire registry (router, initiator, two services,
    /// reaper), STOMP through RabbitMQ. With `ack:
    /// auto` (at-most-once), killing the initiator loses the messages in its hands: the drill
    /// must say so and exit 1. With the default acks, the same drill loses nothing.
    @Test func aMultiProcessClusterLosesNothingUnlessTheRouteIsToldToBeLossy() async throws {
        let scratch = try Scratch(copyingRoutes: false, backend: "mongodb")
        let queue = "/queue/drill-\(UUID().uuidString.prefix(8))"
        func route(ack: String) -> String {
            """
            name: orders
            timeout: 5s
            from:
              - stomp: { destination: \(queue).in, replyTo: \(queue).out, deadLetter: \(queue).dead\(ack) }
              - csv: { dir: rows }
            steps:
              - service: slow
              - service: uppercase
            """
        }
        try scratch.writeRoute("orders.yaml", route(ack: ", ack: auto"))
        let initiator = try SkyProcess(["initiator", "--routes", "Routes", "--registry", scratch.registry, "--log-level", "info"], name: "initiator", directory: scratch.path)
        let slow = try self.service("slow", scratch), upper = try self.service("uppercase", scratch)
        let reaper = try SkyProcess(["reaper", "--registry", scratch.registry, "--log-level", "warning"], name: "reaper", directory: scratch.path)
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--log-level", "warning"], name: "router", directory: scratch.path)
        defer { for process in [initiator, slow, upper, reaper, router] { process.signal(SIGKILL) } }
        let routerBase = try await router.waitForWord(after: "router ready at ")
        let registry = try await scratch.openRegistry()
        #expect(await self.waitForInstances("uppercase", 1, in: registry))
        #expect(await self.waitForInstances("slow", 1, in: registry))
        #expect(await eventually(within: 20) { initiator.stderr.contains("subscribed") })
        let input = #"{"text":"x","sleepMs":100}"#
        // The router's cache has both services: the route answers through it.
        #expect(await eventually(within: 20) { (try? await HTTP.post("\(routerBase)/routes/orders", input).status) == 200 })
        var started: [Int32] = []
        defer { for pid in started { kill(pid, SIGKILL) } }

        let lossy = try await self.drill(scratch, ["--route", "orders", "--routes", "Routes", "--input", input, "--rate", "40", "--concurrency", "8", "--faults", "kill:initiator@2s/1s", "--for", "5s", "--settle", "30s"])
        started += self.restartedPIDs(lossy.report)
        #expect(lossy.status == 1, "\(lossy.stderr.suffix(2000))")
        let lossySources = lossy.report["sources"]?.arrayValue ?? []
        let stomp = lossySources.first { $0["source"] == "stomp" }
        let lost = stomp?["missingCount"]?.intValue ?? 0
        #expect(lost > 0)
        // The CSV rows of the same route, through the same kill, are checkpointed: none lost.
        let rows = lossySources.first { $0["source"] == "csv" }
        #expect(rows?["missingCount"]?.intValue == 0 && rows?["duplicated"]?.intValue == 0 && (rows?["sent"]?.intValue ?? 0) >= 160, "\(rows ?? .null)")
        // HTTP through the router process, which was not faulted: every request answered.
        let posts = lossySources.first { $0["source"] == "http" }
        #expect(posts?["missingCount"]?.intValue == 0 && posts?["answered"]?.intValue == posts?["sent"]?.intValue && (posts?["sent"]?.intValue ?? 0) >= 160, "\(posts ?? .null)")
        #expect(lossy.report["problems"]?.arrayValue?.first?.stringValue == "\(lost) of \(stomp?["sent"]?.intValue ?? 0) stomp inputs missing")
        // Really lost, not late: nothing is left on the three queues for anyone to read.
        let left = try await Command.run([StompTests.python, "-c", StompTests.client, "drain", "\(queue).out", "\(queue).dead", "1", "3"])
        let leftOut = (try? JSONParser.parse(left.output.split(separator: "\n").last.map(String.init) ?? ""))?["copies"]?.intValue
        #expect(left.status == 0 && leftOut == 0, "\(left.output)")

        // The same drill once the route keeps the default acks (the file reloads live in the
        // initiator the drill started again).
        try scratch.writeRoute("orders.yaml", route(ack: ""))
        #expect(await eventually(within: 20) { ((try? await registry.nodes()) ?? []).contains { $0.kind == .initiator && started.contains($0.pid) && $0.status == .ready } })
        try await Task.sleep(for: .seconds(2))
        let safe = try await self.drill(
            scratch, ["--route", "orders", "--routes", "Routes", "--input", input, "--rate", "40", "--concurrency", "8", "--faults", "kill:initiator@2s/1s,suspend:reaper@1s/2s,suspend:broker@3s/1s,suspend:registry@3.5s/1s,suspend:*@4s/1s", "--for", "5s", "--settle", "30s"]
        )
        started += self.restartedPIDs(safe.report)
        #expect(safe.status == 0, "\(safe.stderr.suffix(2000))\n\(JSONWriter.string(safe.report))")
        for kept in safe.report["sources"]?.arrayValue ?? [] {
            #expect(kept["missingCount"]?.intValue == 0 && kept["answered"]?.intValue == kept["sent"]?.intValue && (kept["sent"]?.intValue ?? 0) >= 160, "\(kept)")
        }
        #expect(Set((safe.report["sources"]?.arrayValue ?? []).compactMap { $0["source"]?.stringValue }) == ["http", "stomp", "csv"])
        // Every CSV row's answer is on disk, once: the drill's count is the results files' lines.
        let id = safe.report["id"]?.stringValue ?? "?"
        let results = self.names(scratch.path + "/rows/.out", prefix: id).filter { $0.hasSuffix(".results.jsonl") }
        let lines = try results.reduce(0) { $0 + (try String(contentsOfFile: scratch.path + "/rows/.out/" + $1, encoding: .utf8)).split(separator: "\n").count }
        #expect(Int64(lines) == safe.report["sources"]?.arrayValue?.first { $0["source"] == "csv" }?["answered"]?.intValue)
        let details = (safe.report["events"]?.arrayValue ?? []).compactMap { $0["detail"]?.stringValue }
        #expect(details.count == 5 && details.contains { $0.hasPrefix("SIGKILL initiator at 127.0.0.1:") }, "\(details)")
        // The broker and the MongoDB-wire server: the processes listening on their addresses.
        #expect(details.contains { $0.hasPrefix("SIGSTOP broker at 127.0.0.1:61613, pid ") || $0.hasPrefix("SIGSTOP broker at 127.0.0.1:61613 ") }, "\(details)")
        #expect(details.contains { $0.hasPrefix("SIGSTOP registry at 127.0.0.1:27017") }, "\(details)")
        // `*`: one instance of every service, at once.
        #expect(details.contains { $0.contains("SIGSTOP slow at 127.0.0.1:") && $0.contains("; SIGSTOP uppercase at 127.0.0.1:") }, "\(details)")
        // The reaper (found by its admin address) frozen for 2 s, then let go on: it runs, and
        // is not stopped.
        #expect(details.contains { $0.hasPrefix("SIGSTOP reaper at 127.0.0.1:") && $0.hasSuffix(", pid \(reaper.pid) for 2s, then SIGCONT") }, "\(details)")
        let state = (try? String(contentsOfFile: "/proc/\(reaper.pid)/stat", encoding: .utf8)).flatMap { $0.split(separator: ")").last?.split(separator: " ").first }
        #expect(reaper.process.isRunning && state != "T", "reaper state \(state ?? "?")")
    }
}
