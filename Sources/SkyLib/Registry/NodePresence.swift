import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Keeps one node's record alive in the registry: registers it, heartbeats, re-registers when
/// it was reaped meanwhile, announces draining, and removes it at the end.
///
/// As a `Service` (for routers, reapers, initiators) it registers as ready, heartbeats until
/// graceful shutdown, then deregisters. ``ServiceHost`` drives the same steps itself so it can
/// drain between them.
public final class NodePresence: Service, Sendable {
    /// The registry written to.
    public let registry: any Registry
    /// Time between heartbeats.
    public let interval: Duration
    /// The node's id, fixed for the life of the process.
    public let nodeID: String
    private let startedAt = Date()
    private let buildRecord: @Sendable (NodeStatus) -> NodeRecord
    private let logger: Logger
    private let statusBox = Mutex(NodeStatus.starting)

    /// - Parameters:
    ///   - nodeID: the node's id; a new one unless the caller already has one.
    ///   - record: builds the node's record for a status (called for each write, so stats stay
    ///     current); its `id` and `startedAt` are replaced by the presence's own.
    public init(
        registry: any Registry,
        nodeID: String = Identifiers.nodeID(),
        interval: Duration = .seconds(1),
        logger: Logger,
        record: @escaping @Sendable (NodeStatus) -> NodeRecord
    ) {
        self.registry = registry
        self.nodeID = nodeID
        self.interval = interval
        self.buildRecord = record
        self.logger = logger
    }

    private func makeRecord(_ status: NodeStatus) -> NodeRecord {
        var record = self.buildRecord(status)
        record.id = self.nodeID
        record.startedAt = self.startedAt
        return record
    }

    /// The node's status now.
    public var status: NodeStatus { self.statusBox.withLock { $0 } }

    /// Writes the record with `status` and logs an event.
    public func register(status: NodeStatus = .ready) async {
        self.statusBox.withLock { $0 = status }
        let record = self.makeRecord(status)
        do {
            try await self.registry.register(record)
            try await self.registry.record(
                RegistryEvent(kind: "registered", nodeID: record.id, service: record.service, message: "\(record.kind.rawValue) \(record.service) \(record.version) at \(record.address)")
            )
        } catch {
            self.logger.error("cannot register; will retry with the heartbeat", metadata: ["error": "\(error)"])
        }
    }

    /// Writes the record again, without an event: for facts learnt after registering (the
    /// port a server bound when asked for port 0).
    public func rewrite() async {
        do {
            try await self.registry.register(self.makeRecord(self.status))
        } catch {
            self.logger.error("cannot update the record; the heartbeat will keep trying", metadata: ["error": "\(error)"])
        }
    }

    /// Heartbeats until the status is `draining` or the task is cancelled.
    public func heartbeatLoop() async {
        var failing = false
        while !Task.isCancelled {
            try? await Task.sleep(for: self.interval)
            let status = self.status
            guard status != .draining, !Task.isCancelled else { return }
            let record = self.makeRecord(status)
            do {
                if try await !self.registry.heartbeat(nodeID: record.id, status: status, stats: record.stats, at: Date()) {
                    // Reaped while we were away (a pause, a registry outage): come back.
                    try await self.registry.register(record)
                    self.logger.notice("record was gone from the registry; registered again")
                }
                if failing { self.logger.notice("heartbeats reach the registry again") }
                failing = false
            } catch {
                if !failing { self.logger.error("heartbeat failed; will keep trying", metadata: ["error": "\(error)"]) }
                failing = true
            }
        }
    }

    /// Marks the node draining, locally and in the registry, so routers stop choosing it.
    public func announceDraining() async {
        self.statusBox.withLock { $0 = .draining }
        let record = self.makeRecord(.draining)
        _ = try? await self.registry.heartbeat(nodeID: record.id, status: .draining, stats: record.stats, at: Date())
    }

    /// Removes the record and logs why.
    public func deregister(reason: String = "stopped gracefully") async {
        let record = self.makeRecord(.draining)
        do {
            try await self.registry.deregister(nodeID: record.id)
            try await self.registry.record(RegistryEvent(kind: "deregistered", nodeID: record.id, service: record.service, message: reason))
            self.logger.info("deregistered")
        } catch {
            self.logger.error("cannot deregister; the reaper will remove the record", metadata: ["error": "\(error)"])
        }
    }

    /// Registers as ready, heartbeats until graceful shutdown, then deregisters.
    public func run() async throws {
        await self.register(status: .ready)
        await cancelWhenGracefulShutdown { await self.heartbeatLoop() }
        await self.announceDraining()
        await self.deregister()
    }
}
