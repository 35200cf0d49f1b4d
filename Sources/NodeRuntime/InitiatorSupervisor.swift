import Foundation
public import Initiators
public import Logging
public import Routing
public import ServiceLifecycle
public import SkyLib
public import TLS

/// Runs the initiators routes declare under `from:`, and follows the routes as they change:
/// a source added to a route starts, a source removed (or its route deleted) stops, and one
/// that fails is started again with back-off (1 s, doubling, at most 30 s).
public struct InitiatorSupervisor: Service {
    struct Key: Hashable, Sendable {
        var route: String
        var source: RouteSource
    }

    let table: RouteTable
    let makeInitiator: @Sendable (String, RouteSource) -> (any Initiator)?
    let logger: Logger
    /// How often the route table is compared with the initiators running.
    public var interval: Duration = .milliseconds(500)
    /// Longest wait between restarts of an initiator that keeps failing.
    public var maxRestartDelay: Duration = .seconds(30)

    /// - Parameter makeInitiator: makes the initiator for a route's source (``factory(runner:counters:logger:)``
    ///   for the ones this build knows); `nil` skips the source.
    public init(table: RouteTable, makeInitiator: @escaping @Sendable (String, RouteSource) -> (any Initiator)?, logger: Logger) {
        self.table = table
        self.makeInitiator = makeInitiator
        self.logger = logger
    }

    public func run() async throws {
        var running: [Key: Latch] = [:]
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let wanted = Set(self.table.summaries.flatMap { summary in summary.route.sources.map { Key(route: summary.route.name, source: $0) } })
                for key in running.keys where !wanted.contains(key) {
                    self.logger.notice("initiator stopped: its route no longer declares it", metadata: ["route": "\(key.route)"])
                    running.removeValue(forKey: key)?.open()
                }
                for key in wanted where running[key] == nil {
                    guard let initiator = self.makeInitiator(key.route, key.source) else { continue }
                    let stop = Latch()
                    running[key] = stop
                    self.logger.notice("initiator started: \(initiator.summary)")
                    group.addTask {
                        // The initiator runs until it ends, its route drops it, or shutdown.
                        await withTaskGroup(of: Void.self) { inner in
                            inner.addTask {
                                // A failed initiator (folder not writable, broker refusing the
                                // login …) is started again with back-off, so it resumes by
                                // itself once the cause is fixed; the failure is logged each time.
                                var delay = Duration.seconds(1)
                                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                                    do {
                                        try await initiator.run()
                                        return
                                    } catch {
                                        self.logger.error(
                                            "initiator failed: \(initiator.summary); starting it again in \(delay)",
                                            metadata: ["error": "\(error)"]
                                        )
                                    }
                                    try? await Task.sleep(for: delay)
                                    delay = min(delay * 2, self.maxRestartDelay)
                                }
                            }
                            inner.addTask { await stop.wait() }
                            await inner.next()
                            inner.cancelAll()
                        }
                    }
                }
                try? await Task.sleep(for: self.interval)
            }
            // Graceful shutdown reaches the initiators themselves (they finish what is in hand);
            // release the stop-waiters so their tasks can end.
            for stop in running.values { stop.open() }
        }
    }
}

extension InitiatorSupervisor {
    /// The initiators this build knows, by `from:` kind.
    public static func factory(runner: any RouteRunner, counters: Counters, tls: NodeTLS? = nil, logger: Logger) -> @Sendable (String, RouteSource) -> (any Initiator)? {
        { route, source in
            switch source {
            case .files(let files):
                return FileDropInitiator(configuration: .init(route: route, source: files), runner: runner, counters: counters, logger: logger)
            case .csv(let csv):
                return CSVInitiator(configuration: .init(route: route, source: csv), runner: runner, counters: counters, logger: logger)
            case .stomp(let stomp):
                var configuration = StompInitiator.Configuration(route: route, source: stomp)
                configuration.tls = tls?.client
                return StompInitiator(configuration: configuration, runner: runner, counters: counters, logger: logger)
            }
        }
    }
}
