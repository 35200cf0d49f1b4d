import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit

/// `sky daemon` with real processes: it runs two instances of a service, brings a SIGKILLed
/// one back within 3 s, reports a crash loop instead of spinning, and stops everything on
/// SIGTERM.
@Suite(.timeLimit(.minutes(2)))
struct DaemonTests {
    @Test func theDaemonKeepsItsServicesRunningAndStopsThemCleanly() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try """
            services:
              - name: uppercase
                instances: 2
                flags: ["--ttl", "1.5", "--heartbeat", "0.3"]
              - name: broken
                command: ["false"]
            """.write(toFile: scratch.path + "/daemon.yaml", atomically: true, encoding: .utf8)
        let daemon = try SkyProcess(["daemon", "daemon.yaml", "--registry", scratch.registry], name: "daemon", directory: scratch.path)
        defer { daemon.signal(SIGKILL) }
        let registry = try await scratch.openRegistry()
        func uppercase() async -> [NodeRecord] {
            ((try? await registry.nodes(matching: NodeQuery(service: "uppercase", status: .ready))) ?? [])
                .filter { Date().timeIntervalSince($0.heartbeatAt) < 1.5 }
        }
        let started = await eventually(within: 20) { await uppercase().count == 2 }
        #expect(started, "stderr: \(daemon.stderr.suffix(600))")
        #expect(await eventually { (try? await registry.nodes(matching: NodeQuery(kind: .daemon)).first?.address.contains(":")) == true })

        // One instance is SIGKILLed: a new one is running and registered within 3 s.
        let before = await uppercase()
        let victim = try #require(before.first)
        kill(victim.pid, SIGKILL)
        let back = await eventually(within: 3) {
            let now = await uppercase()
            return now.count == 2 && !now.contains { $0.id == victim.id } && now.allSatisfy { kill($0.pid, 0) == 0 }
        }
        let now = await uppercase()
        #expect(back, "no replacement within 3 s: \(now.map(\.address))")
        // Issue 16: the dead instance's record stayed (and showed `ready`) until a reaper ran;
        // no reaper runs here. The daemon saw its program die and removed the record itself.
        #expect(await eventually(within: 3) { (try? await registry.nodes().contains { $0.id == victim.id }) == false })
        // The record goes first and its event next: wait for the event, not just the removal.
        #expect(await eventually(within: 3) {
            ((try? await registry.events(limit: 50)) ?? []).contains { $0.kind == "exited" && $0.nodeID == victim.id && $0.message.contains("killed by signal 9") }
        })

        // A program that always fails is reported as a crash loop, not restarted in a spin.
        #expect(await eventually(within: 15) {
            ((try? await registry.events(limit: 50)) ?? []).contains { $0.kind == "crash-loop" && $0.service == "broken" }
        })
        let admin = try #require(try await registry.nodes(matching: NodeQuery(kind: .daemon)).first?.address)
        let restarts = try await HTTP.get("http://\(admin)/debug/vars").json["daemon.broken-restarted"]?.intValue ?? 0
        #expect(restarts >= 4 && restarts <= 6, "restarted \(restarts) times")

        // SIGTERM: every instance drains and deregisters, and the daemon exits cleanly.
        daemon.signal(SIGTERM)
        #expect(try await daemon.waitForExit(timeout: 30) == 0)
        #expect(try await registry.nodes(matching: NodeQuery(service: "uppercase")).filter { $0.id != victim.id }.isEmpty)
        #expect(try await registry.nodes(matching: NodeQuery(kind: .daemon)).isEmpty)
    }
}
