public import Logging
public import ServiceLifecycle
public import SkyLib
import RouteModel

/// Runs a service that takes work in (a listener, an initiator) so that stopping it drains it:
/// told to stop, it takes no new input and finishes what it holds, for at most `limit`; what
/// is still in hand then is cancelled, and left as a crash would leave it (a file in
/// `.processing/`, a CSV file at its last checkpoint, a STOMP message unacked), never marked
/// failed.
///
/// It stops with the process (its graceful shutdown), or alone when `stop` opens: the
/// initiator supervisor opens it when a route no longer declares the source. The service runs
/// in a `ServiceGroup` of its own, so its own stop reaches it as graceful shutdown, and that
/// group's graceful-shutdown limit is the drain limit.
public struct Drained: Service {
    /// The service drained.
    public let service: any Service
    /// Longest drain; then what is in hand is cancelled.
    public let limit: Duration
    /// Opened to stop this service alone; `nil`: it stops with the process only.
    public let stop: Latch?
    /// Where the group logs (at debug level; the service logs its own drain).
    public let logger: Logger

    /// Creates a `Drained` from its parts.
    public init(_ service: any Service, limit: Duration, stop: Latch? = nil, logger: Logger) {
        self.service = service
        self.limit = limit
        self.stop = stop
        self.logger = logger
    }

    /// What ended first: the service, or a request to stop it.
    private enum Ended: Sendable {
        case service
        case stopRequested
    }

    public func run() async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: self.service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .cancelGroup)],
            logger: self.logger
        )
        configuration.maximumGracefulShutdownDuration = self.limit
        let group = ServiceGroup(configuration: configuration)
        let stop = self.stop
        // The group follows the process's graceful shutdown by itself; the task below adds
        // this service's own stop.
        try await withThrowingTaskGroup(of: Ended.self) { tasks in
            tasks.addTask {
                try await group.run()
                return .service
            }
            if let stop {
                tasks.addTask {
                    // Cancelled (the service ended first), the wait answers false.
                    if await stop.wait() { await group.triggerGracefulShutdown() }
                    return .stopRequested
                }
            }
            while let ended = try await tasks.next() {
                // The service is done: a stop waiter still waiting has nothing left to stop.
                if case .service = ended { tasks.cancelAll() }
            }
        }
    }
}
