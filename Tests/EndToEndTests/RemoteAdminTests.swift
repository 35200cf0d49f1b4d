import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit

/// `sky stop|restart|register|unregister|deploy` against real processes: the commands travel
/// through the registry, the matching nodes (or their daemon) act, and each acknowledges.
@Suite(.timeLimit(.minutes(3)))
struct RemoteAdminTests {
    static let host = ProcessInfo.processInfo.hostName

    /// Runs a one-shot `sky` command to its end: its exit status and what it printed.
    static func sky(_ arguments: [String], in scratch: Scratch, timeout: Double = 60) async throws -> (status: Int32, output: String) {
        let process = try SkyProcess(arguments + ["--registry", scratch.registry], name: arguments[0], directory: scratch.path)
        let status = try await process.waitForExit(timeout: timeout)
        // The pipe may deliver its last lines just after the exit.
        _ = await eventually(within: 1) { process.stdoutLines.joined().isEmpty == false }
        return (status, process.stdoutLines.joined(separator: "\n"))
    }

    static func live(_ registry: any Registry, _ query: NodeQuery) async -> [NodeRecord] {
        ((try? await registry.nodes(matching: query)) ?? []).filter { Date().timeIntervalSince($0.heartbeatAt) < 2 }
    }

    @Test func theDaemonStopsDeploysAndRestartsExactlyTheMatchingInstances() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try """
            services:
              - name: slow
                instances: 2
                flags: ["--ttl", "2", "--heartbeat", "0.3"]
              - name: uppercase
                instances: 2
                flags: ["--ttl", "2", "--heartbeat", "0.3"]
            """.write(toFile: scratch.path + "/daemon.yaml", atomically: true, encoding: .utf8)
        let daemon = try SkyProcess(["daemon", "daemon.yaml", "--registry", scratch.registry], name: "daemon", directory: scratch.path)
        defer { daemon.signal(SIGKILL) }
        let registry = try await scratch.openRegistry()
        #expect(await eventually(within: 20) { await Self.live(registry, NodeQuery(kind: .service, status: .ready)).count == 4 }, "\(daemon.stderr.suffix(800))")
        // The same service on another host must not be touched by `--host`.
        let elsewhere = NodeRecord(kind: .service, service: "slow", host: "elsewhere", address: "10.9.9.9:1", pid: 0, status: .ready, ttl: 3600)
        try await registry.register(elsewhere)

        // --dry-run lists exactly what would be stopped and touches nothing.
        let slow = await Self.live(registry, NodeQuery(service: "slow", host: Self.host))
        #expect(slow.count == 2)
        let dry = try await Self.sky(["stop", "--service", "slow", "--host", Self.host, "--dry-run"], in: scratch)
        #expect(dry.status == 0 && dry.output.contains("would stop 2 nodes"), "\(dry.output)")
        #expect(slow.allSatisfy { dry.output.contains(Identifiers.short($0.id)) } && !dry.output.contains(Identifiers.short(elsewhere.id)))

        // An unmatched filter says so.
        let none = try await Self.sky(["stop", "--service", "slow", "--region", "mars"], in: scratch)
        #expect(none.status == 1 && none.output.contains("no node matches service=slow region=mars"), "\(none.output)")

        // A call in flight on an instance being stopped still completes: it drains.
        let busy = try #require(slow.first)
        async let call = HTTP.post("http://\(busy.address)/call", #"{"route":"t","payload":{"sleepMs":1500}}"#)
        try await Task.sleep(for: .milliseconds(200))  // the call is on its way before the stop goes out
        let stop = try await Self.sky(["stop", "--service", "slow", "--host", Self.host], in: scratch)
        #expect(stop.status == 0, "\(stop.output)\n\(daemon.stderr.suffix(1500))")
        #expect(stop.output.components(separatedBy: "stopped  slow").count == 3, "\(stop.output)")
        let answer = try await call
        #expect(answer.status == 200 && answer.json["payload"]?["sleptMs"]?.intValue == 1500, "\(answer.status) \(answer.text)")

        // Exactly the matching instances are gone, deregistered, and stay stopped.
        let remaining = try await registry.nodes()
        #expect(!remaining.contains { slow.map(\.id).contains($0.id) })
        #expect(remaining.contains { $0.id == elsewhere.id })
        #expect(await Self.live(registry, NodeQuery(service: "uppercase", status: .ready)).count == 2)
        #expect(slow.allSatisfy { kill($0.pid, 0) != 0 })
        let events = try await registry.events(limit: 100)
        for node in slow {
            #expect(events.contains { $0.kind == "command-done" && $0.nodeID == node.id })
            // Drained by the daemon's SIGTERM, the node deregistered itself.
            #expect(events.contains { $0.kind == "deregistered" && $0.nodeID == node.id })
        }
        #expect(daemon.process.isRunning)

        // Deploy: the host's daemon starts a new instance, registered and ready.
        let deploy = try await Self.sky(["deploy", "slow", "--host", Self.host, "--instances", "1"], in: scratch)
        #expect(deploy.status == 0 && deploy.output.contains("ready  slow"), "\(deploy.output)")
        #expect(await Self.live(registry, NodeQuery(service: "slow", host: Self.host, status: .ready)).count == 1)
        let unknown = try await Self.sky(["deploy", "nosuch", "--host", Self.host, "--timeout", "5"], in: scratch)
        #expect(unknown.status == 1 && unknown.output.contains("cannot run 'nosuch'"), "\(unknown.output)")

        // Restart one instance by id (its short form, the last 8 characters: a time-ordered id's
        // first ones are the clock, shared by instances started together): a new process and
        // node replace it; the other is untouched.
        let upper = await Self.live(registry, NodeQuery(service: "uppercase"))
        let (victim, bystander) = (try #require(upper.first), try #require(upper.last))
        // A prefix both ids share is refused, naming the nodes, and nothing is restarted.
        let shared = String(zip(victim.id, bystander.id).prefix { $0 == $1 }.map(\.0))
        let ambiguous = try await Self.sky(["restart", "--id", shared], in: scratch)
        #expect(ambiguous.status == 1 && ambiguous.output.contains("matches") && ambiguous.output.contains(Identifiers.short(bystander.id)), "\(ambiguous.output)")
        #expect(kill(victim.pid, 0) == 0 && kill(bystander.pid, 0) == 0)
        let restart = try await Self.sky(["restart", "--id", Identifiers.short(victim.id)], in: scratch)
        #expect(restart.status == 0 && restart.output.contains("restarted  uppercase"), "\(restart.output)")
        #expect(await eventually(within: 10) {
            let now = await Self.live(registry, NodeQuery(service: "uppercase", status: .ready))
            return now.count == 2 && !now.contains { $0.id == victim.id } && now.contains { $0.id == bystander.id }
        })
        #expect(kill(victim.pid, 0) != 0 && kill(bystander.pid, 0) == 0)

        // Unregister keeps the process but takes it out of rotation; register puts it back.
        let unregister = try await Self.sky(["unregister", "--id", Identifiers.short(bystander.id)], in: scratch)
        #expect(unregister.status == 0, "\(unregister.output)")
        #expect(try await registry.nodes().first { $0.id == bystander.id }?.status == .unregistered)
        let register = try await Self.sky(["register", "--id", Identifiers.short(bystander.id)], in: scratch)
        #expect(register.status == 0, "\(register.output)")
        #expect(try await registry.nodes().first { $0.id == bystander.id }?.status == .ready)

        // A daemon that dies takes its programs with it: they notice and drain, rather than
        // run on unsupervised beside the copies its next start makes.
        let programs = await Self.live(registry, NodeQuery(kind: .service)).map(\.pid)
        #expect(!programs.isEmpty)
        daemon.signal(SIGKILL)
        #expect(await eventually(within: 15) { programs.allSatisfy { kill($0, 0) != 0 } }, "still running: \(programs.filter { kill($0, 0) == 0 })")
    }

    @Test(arguments: ["sqlite", "mongodb"])
    func aStandaloneServiceStopsAndRestartsItself(backend: String) async throws {
        let scratch = try Scratch(copyingRoutes: false, backend: backend)
        let eu = try SkyProcess(["service", "uppercase", "--region", "eu", "--registry", scratch.registry], name: "eu", directory: scratch.path)
        let local = try SkyProcess(["service", "uppercase", "--registry", scratch.registry], name: "local", directory: scratch.path)
        defer {
            eu.signal(SIGKILL)
            local.signal(SIGKILL)
        }
        let registry = try await scratch.openRegistry()
        #expect(await eventually(within: 20) { await Self.live(registry, NodeQuery(service: "uppercase", status: .ready)).count == 2 })
        let before = try #require(await Self.live(registry, NodeQuery(region: "local")).first)

        // Restart: the same process (same pid) drains, deregisters and comes back as a new node.
        let restart = try await Self.sky(["restart", "--service", "uppercase", "--region", "local"], in: scratch)
        #expect(restart.status == 0, "\(restart.output)")
        #expect(await eventually(within: 15) {
            await Self.live(registry, NodeQuery(region: "local", status: .ready)).contains { $0.id != before.id && $0.pid == local.pid }
        }, "\(local.stderr.suffix(1500))")
        #expect(local.process.isRunning)

        // Stop by region: only the eu instance drains and exits, with status 0.
        let stop = try await Self.sky(["stop", "--service", "uppercase", "--region", "eu"], in: scratch)
        #expect(stop.status == 0 && stop.output.contains("stopped  uppercase"), "\(stop.output)")
        #expect(try await eu.waitForExit(timeout: 15) == 0)
        let events = try await registry.events(limit: 100)
        #expect(events.contains { $0.kind == "deregistered" && $0.service == "uppercase" && $0.message.contains("stop by command") })
        #expect(await Self.live(registry, NodeQuery(service: "uppercase")).map(\.region) == ["local"])
        #expect(local.process.isRunning)
    }
}
