import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// A process that cannot start says so and exits (issue 16): every role whose listener cannot
/// bind, because another socket holds the port, exits non-zero within a few seconds with one
/// line naming the address and the reason. Before, `sky run` logged `CancellationError()`
/// lines, never named the port, ignored SIGTERM and spun a core; `sky service` hung.
@Suite(.timeLimit(.minutes(3)))
struct StartupFailureTests {
    /// Holds a TCP port on 127.0.0.1 with a real listening socket, as another program would.
    final class HeldPort {
        let fd: Int32
        let port: Int

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0, listen(fd, 8) == 0 else {
                close(fd)
                throw E2EError("cannot hold a port")
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            self.fd = fd
            self.port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(self.fd) }
    }

    /// The roles and how each is told to listen on the held port.
    static let roles: [(name: String, arguments: @Sendable (Int) -> [String])] = [
        ("run --http", { ["run", "--http", "127.0.0.1:\($0)"] }),
        ("service --port", { ["service", "uppercase", "--port", "\($0)"] }),
        ("router --http", { ["router", "--routes", "Routes", "--http", "127.0.0.1:\($0)"] }),
        ("dashboard --http", { ["dashboard", "--http", "127.0.0.1:\($0)"] }),
        ("reaper --admin", { ["reaper", "--admin", "127.0.0.1:\($0)"] }),
        ("initiator --admin", { ["initiator", "--routes", "Routes", "--admin", "127.0.0.1:\($0)"] }),
        ("daemon --admin", { ["daemon", "daemon.yaml", "--admin", "127.0.0.1:\($0)"] }),
    ]

    @Test(arguments: Self.roles.indices)
    func aBusyPortEndsTheProcessNamingTheAddress(role: Int) async throws {
        let (name, arguments) = Self.roles[role]
        let scratch = try Scratch()
        try "services:\n  - name: echo\n".write(toFile: scratch.path + "/daemon.yaml", atomically: true, encoding: .utf8)
        let held = try HeldPort()
        let started = ContinuousClock.now
        let sky = try SkyProcess(arguments(held.port) + ["--registry", scratch.registry], name: name, directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let status = try await sky.waitForExit(timeout: 15)
        let took = ContinuousClock.now - started
        #expect(status != 0, "\(name) exited 0")
        #expect(took < .seconds(10), "\(name) took \(took) to give up")
        let output = sky.stderr + sky.stdoutLines.joined(separator: "\n")
        #expect(output.contains("cannot listen on 127.0.0.1:\(held.port): Address already in use"), "\(name): \(output.suffix(800))")
        // The reason is the last thing said (ArgumentParser's "Error: …" line on stdout or stderr).
        #expect(output.split(separator: "\n").last?.hasPrefix("Error: cannot listen on") == true || sky.stdoutLines.last?.hasPrefix("Error: cannot listen on") == true || sky.stderr.split(separator: "\n").last?.hasPrefix("Error: cannot listen on") == true, "\(name): \(output.suffix(800))")
    }

    /// SIGTERM ends a role in every state, here while it is still starting.
    @Test func sigtermDuringStartupEndsTheProcess() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        // The point: a signal before it is ready. It waits for the first in-process service to
        // listen, which proves the process's service group runs (it turns SIGTERM into a
        // graceful shutdown); the listener that makes it ready comes later. A fixed 100 ms
        // sleep once signalled a process still loading (a fresh-clone run): SIGTERM's default
        // action ended it, not the group, and the exit status was the signal's.
        #expect(await eventually(within: 30) { sky.stderr.contains("Server started and listening") })
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit(timeout: 15) == 0)
    }
}
