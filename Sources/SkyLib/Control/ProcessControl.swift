import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Stops or restarts this process on a remote command, the same way an operator would: with
/// SIGTERM, so the `ServiceGroup`'s graceful shutdown drains and deregisters every part.
public enum ProcessControl {
    private static let restartRequested = Atomic<Bool>(false)
    private static let orphanStop = Atomic<Bool>(false)
    /// This process's parent when it started (read early: see ``watchSupervisor()``).
    private static let parentAtStart = getppid()

    /// The daemon supervising this process, if one started it (`SKYNET_SUPERVISOR`, its node id).
    public static var supervisor: String? {
        ProcessInfo.processInfo.environment["SKYNET_SUPERVISOR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Notes the parent now, so ``stopIfSupervisorIsGone()`` can tell when it has gone.
    public static func watchSupervisor() {
        _ = self.parentAtStart
    }

    /// Under a daemon, when the daemon has died (this process was handed to another parent),
    /// starts a graceful shutdown: a new daemon starts its programs afresh, so one left running
    /// would be a second copy nobody supervises.
    /// - Returns: whether it did.
    public static func stopIfSupervisorIsGone() -> Bool {
        guard self.supervisor != nil, getppid() != self.parentAtStart else { return false }
        guard !self.orphanStop.exchange(true, ordering: .sequentiallyConsistent) else { return false }
        self.requestStop()
        return true
    }

    /// Starts a graceful shutdown of this process.
    public static func requestStop() {
        kill(getpid(), SIGTERM)
    }

    /// Starts a graceful shutdown after which ``restartIfRequested()`` runs the process again.
    public static func requestRestart() {
        self.restartRequested.store(true, ordering: .sequentiallyConsistent)
        self.requestStop()
    }

    /// This process's executable (to run it again, or to start built-in services with it).
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Whether a restart was asked for.
    public static var isRestartRequested: Bool { self.restartRequested.load(ordering: .sequentiallyConsistent) }

    /// Once the process has shut down: when a restart was asked for, replaces the process with
    /// a fresh run of the same executable, arguments and environment (same pid, so a
    /// supervisor keeps tracking it; a new node id, as for any start). Returns only when no
    /// restart was asked for or `execv` failed.
    public static func restartIfRequested() {
        guard self.isRestartRequested else { return }
        // Signal handling installs a blocked mask, which exec would pass on: the new process
        // must see SIGTERM again.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        let executable = self.executablePath
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv(executable, &argv)
        FileHandle.standardError.write(Data("restart: cannot exec \(executable): \(String(cString: strerror(errno)))\n".utf8))
    }
}
