import Logging
import NIOPosix
import SkyLib
import RouteModel

/// Runs a blocking file operation on the thread pool until it succeeds, with back-off
/// (200 ms doubling to 30 s). The first failure is logged once with the file it concerns and
/// counted; the recovery is logged too. Used where giving up would lose work or do it twice
/// (an answer not written, an input not moved, a checkpoint not saved).
struct BackoffRetry: Sendable {
    var logger: Logger
    var counters: Counters
    /// Where the blocking work runs (the node's pool).
    var threadPool: NIOThreadPool
    /// Counter bumped once per episode of failures, e.g. `csv.ROUTE-checkpoint-errors`.
    var counter: String

    /// Runs blocking `body` on the thread pool until it succeeds.
    /// - Returns: `false` when stopped (shutdown, or `shouldStop`) before it succeeded.
    func run(
        _ message: @autoclosure () -> Logger.Message,
        file: String,
        shouldStop: @Sendable () -> Bool = { false },
        _ body: @escaping @Sendable () throws -> Void
    ) async -> Bool {
        await self.run(message(), file: file, shouldStop: shouldStop, waiting: { try await self.threadPool.runIfActive(body) })
    }

    /// Runs `body` (which does its blocking work off the caller) until it succeeds.
    /// - Returns: `false` when stopped (shutdown, or `shouldStop`) before it succeeded.
    func run(
        _ message: @autoclosure () -> Logger.Message,
        file: String,
        shouldStop: @Sendable () -> Bool = { false },
        waiting body: @Sendable () async throws -> Void
    ) async -> Bool {
        var delay = Duration.milliseconds(200)
        var logged = false
        while true {
            do {
                try await body()
                if logged { self.logger.notice("done at last", metadata: ["file": "\(file)"]) }
                return true
            } catch {
                // Cut short by a stop past the drain limit: not a failure to report; the work is
                // left for the next start.
                if Task.isCancelled { return false }
                if !logged {
                    self.counters.add(self.counter)
                    self.logger.error(message(), metadata: ["file": "\(file)", "error": "\(error)"])
                    logged = true
                }
                if Task.isCancelled || shouldStop() { return false }
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return false
                }
                delay = min(delay * 2, .seconds(30))
            }
        }
    }
}
