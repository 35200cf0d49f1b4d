import Foundation
public import Logging
public import RegistryKit
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
import SkyLib
import RouteModel
#endif

/// This process's life: its services run in one `ServiceGroup`, SIGTERM and SIGINT shut it
/// down gracefully, and a remote `sky stop` or `sky restart` ends it the same way.
///
/// The node runtime owns one per process and hands its ``nodeControl`` to the parts that take
/// remote commands, so library code never signals its own process: a stop triggers the
/// group's graceful shutdown (every part drains and deregisters), and a restart does the same
/// and then runs the process again (`execv`, same pid, so a supervisor keeps tracking it).
public final class ProcessLifecycle: Sendable {
    private struct State {
        var group: ServiceGroup?
        var stopRequested = false
        var restartRequested = false
    }

    private let state = Mutex(State())
    /// The daemon supervising this process, if one started it (its node id, from
    /// `SKYNET_SUPERVISOR`, which `sky daemon` sets for its programs); `nil` for a process on
    /// its own.
    public let supervisor: String?

    /// Creates a `ProcessLifecycle`.
    /// - Parameter supervisor: the daemon supervising this process, if any (see ``supervisor``).
    public init(supervisor: String? = nil) {
        self.supervisor = supervisor.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// This process's executable (to run it again, or to start built-in services with it).
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Whether a restart was asked for.
    public var isRestartRequested: Bool { self.state.withLock { $0.restartRequested } }

    /// For a process that is one node: `stop` drains and exits it, `restart` drains it and
    /// starts the same command line again. Under a daemon (`SKYNET_SUPERVISOR` set) those two
    /// are left to the daemon, which owns the process.
    public var nodeControl: NodeControl {
        if self.supervisor != nil { return NodeControl() }
        return NodeControl(handlers: [
            .stop: { _ in
                await self.requestStop()
                return .afterDeregistering("drained and deregistered; the process exited")
            },
            .restart: { _ in
                await self.requestRestart()
                return .afterDeregistering("drained and deregistered; the process starts again as a new node")
            },
        ])
    }

    /// Starts a graceful shutdown of the process (at once if it is running, else as soon as it runs).
    public func requestStop() async {
        let group = self.state.withLock { state in
            state.stopRequested = true
            return state.group
        }
        await group?.triggerGracefulShutdown()
    }

    /// Starts a graceful shutdown after which ``run(services:logger:gracefulLimit:)`` runs the
    /// process again.
    public func requestRestart() async {
        self.state.withLock { $0.restartRequested = true }
        await self.requestStop()
    }

    /// Runs `services` in one group until it shuts down (a signal, a remote stop, or a part
    /// that ended or failed: see ``ServiceGroupConfiguration/sky(services:logger:gracefulLimit:)``);
    /// then, when a restart was asked for, replaces the process with a fresh run of it.
    /// Under a daemon it also ends the group when that daemon is gone (``SupervisorWatch``).
    /// - Throws: the error of the part that failed, so the process says why and exits non-zero.
    public func run(services: [any Service], logger: Logger, gracefulLimit: Duration = .seconds(30)) async throws {
        var services = services
        if self.supervisor != nil { services.append(SupervisorWatch(logger: logger)) }
        let group = ServiceGroup(configuration: .sky(services: services, logger: logger, gracefulLimit: gracefulLimit))
        let stopAtOnce = self.state.withLock { state in
            state.group = group
            return state.stopRequested
        }
        if stopAtOnce { await group.triggerGracefulShutdown() }
        try await group.run()
        self.restartIfRequested()
    }

    /// When a restart was asked for, replaces the process with a fresh run of the same
    /// executable, arguments and environment (a new node id, as for any start). Returns only
    /// when no restart was asked for or `execv` failed.
    private func restartIfRequested() {
        guard self.isRestartRequested else { return }
        // Signal handling installs a blocked mask, which exec would pass on: the new process
        // must see SIGTERM again.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        let executable = Self.executablePath
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv(executable, &argv)
        FileHandle.standardError.write(Data("restart: cannot exec \(executable): \(String(cString: strerror(errno)))\n".utf8))
    }
}
