public import Logging
public import ServiceLifecycle
import SkyLib
import RouteModel
import Synchronization

/// Runs out-of-band (`async: true`) steps: fired, never awaited, and bounded.
///
/// At most `limit` async calls are in flight; when full, further ones are dropped and counted
/// (`route.NAME-async-dropped`) so a slow audit service can never make a route wait or memory
/// grow. Jobs run in one task group owned by `run()`, so graceful shutdown waits for the
/// in-flight ones.
public final class AsyncStepQueue: Service, Sendable {
    /// An out-of-band step, ready to run.
    public typealias Job = @Sendable () async -> Void

    /// Most async calls in flight at once.
    public let limit: Int
    /// Jobs accepted and not finished: an atomic, since every out-of-band step changes it twice.
    private let inFlight = Atomic<Int>(0)
    /// Hands accepted jobs to `run()`'s task group (unbounded in the stream's own buffer, bounded
    /// by ``limit`` through `inFlight`).
    private let stream: AsyncStream<Job>
    /// Where ``submit(_:)`` puts jobs; finished at graceful shutdown.
    private let continuation: AsyncStream<Job>.Continuation
    private let logger: Logger

    /// Creates an `AsyncStepQueue` from its parts.
    public init(limit: Int = 1024, logger: Logger) {
        self.limit = limit
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Job.self)
        self.logger = logger
    }

    /// Async calls in flight now.
    public var count: Int { self.inFlight.load(ordering: .relaxed) }

    /// Queues `job` unless ``limit`` jobs are in flight.
    /// - Returns: `false` when the job was dropped.
    @discardableResult
    public func submit(_ job: @escaping Job) -> Bool {
        while true {
            let current = self.inFlight.load(ordering: .relaxed)
            guard current < self.limit else { return false }
            if self.inFlight.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged { break }
        }
        switch self.continuation.yield(job) {
        case .enqueued: return true
        default:
            self.inFlight.subtract(1, ordering: .relaxed)
            return false
        }
    }

    /// Runs queued jobs until graceful shutdown, then finishes those already queued.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await job in self.stream {
                    group.addTask {
                        await job()
                        self.inFlight.subtract(1, ordering: .relaxed)
                    }
                }
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }
}
