import Foundation
public import Initiators
public import Logging
public import NIOCore
public import NIOPosix
public import Routing
public import ServiceLifecycle
public import SkyLib
public import RouteModel
public import TLS

/// Runs the initiators routes declare under `from:`, and follows the routes as they change:
/// a source added to a route starts, a source removed (or its route deleted, or its settings
/// edited) stops, and one that fails is started again with back-off (1 s, doubling, at most
/// 30 s).
///
/// Stopping an initiator drains it (``Drained``): at process shutdown and when its route
/// drops it alike, it takes no new input and finishes what it holds, for at most
/// ``drainLimit``; what is left then is cancelled, left as a crash would leave it, and taken
/// again by the next initiator on that folder or queue. A source whose settings changed starts
/// again only once the old initiator on the same folder or queue has drained, so the two never
/// work on one file at once.
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
    /// Longest an initiator that is stopped may take to finish the input it holds.
    public var drainLimit: Duration = NodeContext.defaultDrainLimit
    /// Where running initiators are registered to put back the failed inputs of their source.
    public var failedWork: FailedWork?

    /// - Parameter makeInitiator: makes the initiator for a route's source (``factory(runner:counters:tls:logger:)``
    ///   for the ones this build knows); `nil` skips the source.
    public init(table: RouteTable, makeInitiator: @escaping @Sendable (String, RouteSource) -> (any Initiator)?, logger: Logger) {
        self.table = table
        self.makeInitiator = makeInitiator
        self.logger = logger
    }

    public func run() async throws {
        var running: [Key: Latch] = [:]
        // Folders and queues whose initiator is still running or draining.
        let busy = Locked(Set<String>())
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let wanted = Set(self.table.summaries.flatMap { summary in summary.route.sources.map { Key(route: summary.route.name, source: $0) } })
                for key in running.keys where !wanted.contains(key) {
                    self.logger.notice("initiator stopping: its route no longer declares it; it finishes what it holds", metadata: ["route": "\(key.route)"])
                    running.removeValue(forKey: key)?.open()
                }
                for key in wanted where running[key] == nil {
                    // An edited source on the same folder or queue waits for the old one to drain.
                    guard busy.withLock({ !$0.contains(key.source.resource) }), let initiator = self.makeInitiator(key.route, key.source) else { continue }
                    let stop = Latch()
                    running[key] = stop
                    busy.withLock { _ = $0.insert(key.source.resource) }
                    self.logger.notice("initiator started: \(initiator.summary)")
                    let redrives = (initiator as? any Redriving).map { ($0, key.source.failedKey(route: key.route)) }
                    if let (redriver, failedKey) = redrives { self.failedWork?.register(redriver, for: failedKey) }
                    group.addTask {
                        await self.supervise(initiator, stop: stop)
                        if let (_, failedKey) = redrives { self.failedWork?.unregister(failedKey) }
                        busy.withLock { _ = $0.remove(key.source.resource) }
                    }
                }
                try? await Task.sleep(for: self.interval)
            }
            // Graceful shutdown reaches every initiator through its own group (``Drained``):
            // each finishes what it holds, and the group ends once they all have.
        }
    }

    /// Runs one initiator until it ends, is stopped, or the process shuts down; a failed one
    /// (folder not writable, broker refusing the login …) is started again with back-off, so
    /// it resumes by itself once the cause is fixed; the failure is logged each time.
    private func supervise(_ initiator: any Initiator, stop: Latch) async {
        var delay = Duration.seconds(1)
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !stop.isOpen {
            do {
                try await Drained(initiator, limit: self.drainLimit, stop: stop, logger: self.logger).run()
                return
            } catch {
                self.logger.error("initiator failed: \(initiator.summary); starting it again in \(delay)", metadata: ["error": "\(error)"])
            }
            // Woken early by a stop; a graceful shutdown is seen at the next turn.
            await withTaskGroup(of: Void.self) { [delay] wait in
                wait.addTask { try? await Task.sleep(for: delay) }
                wait.addTask { await stop.wait() }
                wait.addTask { try? await gracefulShutdown() }
                await wait.next()
                wait.cancelAll()
            }
            delay = min(delay * 2, self.maxRestartDelay)
        }
    }
}

extension InitiatorSupervisor {
    /// The initiators this build knows, by `from:` kind.
    /// - Parameters:
    ///   - environment: the process's environment variables (a STOMP source's broker and login
    ///     when its route does not name them: `SKYNET_STOMP_*`).
    ///   - eventLoopGroup: where broker connections run (the node's loops).
    ///   - threadPool: where the folders' blocking calls run (the node's pool).
    ///   - failures: where initiators report failed inputs (the node's ``FailedWork``).
    public static func factory(
        runner: any RouteRunner, counters: Counters, tls: NodeTLS? = nil, environment: [String: String] = [:], eventLoopGroup: any EventLoopGroup,
        threadPool: NIOThreadPool, failures: any FailedInputs = NoFailedInputs(), logger: Logger
    ) -> @Sendable (String, RouteSource) -> (any Initiator)? {
        { route, source in
            switch source {
            case .files(let files):
                return FileDropInitiator(
                    configuration: .init(route: route, source: files), runner: runner, counters: counters, threadPool: threadPool, failures: failures, logger: logger
                )
            case .csv(let csv):
                return CSVInitiator(
                    configuration: .init(route: route, source: csv), runner: runner, counters: counters, threadPool: threadPool, failures: failures, logger: logger
                )
            case .stomp(let stomp):
                var configuration = StompInitiator.Configuration(route: route, source: stomp)
                configuration.tls = tls?.client
                configuration.environment = environment
                return StompInitiator(configuration: configuration, runner: runner, counters: counters, eventLoopGroup: eventLoopGroup, failures: failures, logger: logger)
            }
        }
    }
}

extension RouteSource {
    /// The source as failed items name it: kind, and the folder or destination as the route
    /// writes it.
    func failedKey(route: String) -> FailedWork.SourceKey {
        switch self {
        case .files(let files): FailedWork.SourceKey(route: route, source: .files, resource: files.dir)
        case .csv(let csv): FailedWork.SourceKey(route: route, source: .csv, resource: csv.dir)
        case .stomp(let stomp): FailedWork.SourceKey(route: route, source: .stomp, resource: stomp.destination)
        }
    }

    /// What an initiator of this source works on, so that two never work on it at once: the
    /// folder (absolute, normalised), or the broker and queue.
    var resource: String {
        switch self {
        case .files(let files): Self.folder(files.dir)
        case .csv(let csv): Self.folder(csv.dir)
        case .stomp(let stomp): "stomp \(stomp.url ?? "") \(stomp.destination)"
        }
    }

    private static func folder(_ dir: String) -> String {
        let absolute = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        return "folder " + URL(fileURLWithPath: absolute).standardizedFileURL.path
    }
}
