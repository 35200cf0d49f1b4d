import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit

/// The MongoDB-wire registry server stops answering for 10 s (SIGSTOP: it hangs, keeping its
/// data, as a stuck or partitioned server does) and comes back. Routing goes on from the
/// cache, nodes keep (or regain) their records, and the reaper does not reap live nodes
/// because of the outage.
@Suite(.timeLimit(.minutes(2)))
struct RegistryOutageTests {
    /// The pid of the MongoDB-wire server the tests use (`scripts/services.sh up` started it,
    /// maybe from another checkout): found by its command line.
    static func registryServerPID() async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        process.arguments = ["-o", "-f", "nx-27017 .*-p 27017"]
        let outputPath = NSTemporaryDirectory() + "pgrep-\(UUID().uuidString.prefix(8)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        try process.run()
        _ = try await process.exitStatus(timeout: 10)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw E2EError("no nx-27017 process on port 27017: start it with scripts/services.sh up")
        }
        return pid
    }

    @Test func routingGoesOnThroughATenSecondRegistryOutage() async throws {
        let scratch = try Scratch(copyingRoutes: false, backend: "mongodb")
        try scratch.writeRoute("up.yaml", "name: up\ntimeout: 3s\nsteps:\n  - service: uppercase\n    retry: { attempts: 3, backoff: 10ms }\n")
        var services: [SkyProcess] = []
        for _ in 0..<2 {
            let service = try SkyProcess(
                ["service", "uppercase", "--registry", scratch.registry, "--ttl", "2", "--heartbeat", "0.5"], name: "uppercase", directory: scratch.path
            )
            _ = try await service.waitForWord(after: "ready at ")
            services.append(service)
        }
        let reaper = try SkyProcess(["reaper", "--registry", scratch.registry, "--interval", "0.2"], name: "reaper", directory: scratch.path)
        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path
        )
        let base = try await router.waitForWord(after: "router ready at ")
        let registry = try await scratch.openRegistry()
        let serverPID = try await Self.registryServerPID()
        defer {
            kill(serverPID, SIGCONT)
            for process in services + [reaper, router] { process.signal(SIGKILL) }
        }
        #expect(await eventually { (try? await registry.nodes(matching: NodeQuery(service: "uppercase")).count) == 2 })
        #expect(try await HTTP.post("\(base)/routes/up", #"{"text":"before"}"#).status == 200)

        // The server hangs for 10 s; requests keep flowing from the routers' caches.
        kill(serverPID, SIGSTOP)
        let outageEnds = ContinuousClock.now + .seconds(10)
        var sent = 0
        var failed: [String] = []
        while ContinuousClock.now < outageEnds {
            let answer = try await HTTP.post("\(base)/routes/up", #"{"text":"during"}"#)
            sent += 1
            if answer.status != 200 { failed.append("\(answer.status) \(answer.text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(serverPID, SIGCONT)
        #expect(sent > 20)
        #expect(failed.isEmpty, "\(failed.count) of \(sent) failed during the outage: \(failed.prefix(3))")

        // Back: both instances are registered and heartbeating, and none was reaped.
        let recovered = await eventually(within: 20) {
            guard let nodes = try? await registry.nodes(matching: NodeQuery(service: "uppercase")) else { return false }
            return nodes.count == 2 && nodes.allSatisfy { Date().timeIntervalSince($0.heartbeatAt) < 2 }
        }
        #expect(recovered, "the instances did not come back to the registry after the outage")
        let reaped = try await registry.events(limit: 100).filter { $0.kind == "reaped" && $0.service == "uppercase" }
        #expect(reaped.isEmpty, "live instances were reaped because of the outage: \(reaped.map(\.message))")
        let after = try await HTTP.post("\(base)/routes/up", #"{"text":"after"}"#)
        #expect(after.status == 200, "after the outage: \(after.text)")
    }
}
