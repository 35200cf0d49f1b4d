import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The hosts harness itself (``Hosts``): hosts reach each other at their own addresses, a cut
/// drops packets silently (connections time out, they are not refused), a heal restores the
/// link, and nothing is left behind: not by ``Hosts/close()``, not by a run that died.
@Suite(.serialized, .timeLimit(.minutes(2)), .enabled(if: requirement(Hosts.unavailable == nil, test: "HostsTests", Hosts.unavailable ?? ""), "needs network namespaces"))
struct HostsTests {
    /// Runs `command` on `host` to its end; answers its exit status.
    static func run(_ hosts: Hosts, _ host: String, _ command: [String]) async throws -> Int32 {
        let process = Process()
        let full = hosts.command(host, command)
        process.executableURL = URL(fileURLWithPath: full[0])
        process.arguments = Array(full.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return try await process.exitStatus(timeout: 30)
    }

    static func namespaces() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "list"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        defer { process.waitUntilExit() }
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func hostsTalkACutDropsSilentlyAndAHealRestoresTheLink() async throws {
        let hosts = try Hosts(["client", "server"])
        defer { hosts.close() }
        let server = Process()
        let command = hosts.command("server", ["python3", "-m", "http.server", "8000", "--bind", hosts.address("server")])
        server.executableURL = URL(fileURLWithPath: command[0])
        server.arguments = Array(command.dropFirst())
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        let url = "http://\(hosts.address("server")):8000/"
        // curl's exit status: 0 answered, 7 refused, 28 timed out.
        let curl = ["curl", "-s", "-o", "/dev/null", "--connect-timeout", "1", "--max-time", "2", url]
        #expect(await eventually(within: 15) { (try? await Self.run(hosts, "client", curl)) == 0 })
        try hosts.cut("client", "server")
        #expect(try await Self.run(hosts, "client", curl) == 28, "a cut must time out, not refuse")
        try hosts.heal("client", "server")
        #expect(try await Self.run(hosts, "client", curl) == 0)
        try hosts.isolate("server")
        #expect(try await Self.run(hosts, "client", curl) == 28)
        try hosts.rejoin("server")
        #expect(try await Self.run(hosts, "client", curl) == 0)
        // close() kills what runs inside and deletes every namespace.
        let names = [hosts.namespace("client"), hosts.namespace("server")]
        hosts.close()
        #expect(try await server.exitStatus(timeout: 10) != 0)
        let left = try Self.namespaces()
        #expect(!names.contains { left.contains($0) }, "left behind: \(left)")
    }

    @Test func aRunThatDiedLeavesNothingBehindTheNextRun() async throws {
        // A pid that is surely gone: a process that ran and was reaped.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let leftover = "skyt\(gone.processIdentifier)x1-orphan"
        let add = Process()
        add.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        add.arguments = ["netns", "add", leftover]
        try add.run()
        add.waitUntilExit()
        #expect(try Self.namespaces().contains(leftover))
        let hosts = try Hosts(["a"])
        hosts.close()
        #expect(!(try Self.namespaces().contains(leftover)))
    }
}
