import Foundation
public import Logging
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
import SkyLib
import RouteModel
import RegistryKit
#endif

/// Under a daemon (`SKYNET_SUPERVISOR`), ends when that daemon has died (this process was
/// handed to another parent), which shuts the process's group down gracefully: a new daemon
/// starts its programs afresh, so one left running would be a second copy nobody supervises.
public struct SupervisorWatch: Service {
    /// This process's parent when the watch was made (the daemon that started it).
    let parentAtStart = getppid()
    let interval: Duration
    let logger: Logger

    /// Creates a `SupervisorWatch` from its parts.
    public init(interval: Duration = .seconds(1), logger: Logger) {
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let parent = self.parentAtStart
        do {
            try await cancelWhenGracefulShutdown {
                while getppid() == parent {
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return  // the process is shutting down anyway
        }
        self.logger.warning("the daemon that supervised this process is gone; stopping, so its next start does not find a second copy running")
    }
}
