import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import SkyLib

/// The registry's roles a node's own presence uses: its record (``NodeDirectory``), the events
/// it leaves (``EventLog``) and the commands it claims (``CommandQueue``).
public typealias PresenceStore = NodeDirectory & EventLog & CommandQueue

/// Keeps one node's record alive in the registry: registers it, heartbeats, re-registers when
/// it was reaped meanwhile, announces draining, and removes it at the end.
///
/// As a `Service` (for routers, reapers, initiators) it registers as ready, heartbeats until
/// graceful shutdown, then deregisters. `ServiceHost` (module Services) drives the same steps itself so it can
/// drain between them.
///
/// With each heartbeat it also claims the commands addressed to the node (`sky stop`,
/// `sky unregister` …) that its ``NodeControl`` handles, acts, and acknowledges them.
public final class NodePresence: Service, Sendable {
    /// The registry written to.
    public let registry: any PresenceStore
    /// Time between heartbeats.
    public let interval: Duration
    /// The node's id, fixed for the life of the process.
    public let nodeID: String
    private let startedAt = Date()
    private let buildRecord: @Sendable (NodeStatus) -> NodeRecord
    private let logger: Logger
    private let statusBox = Mutex(NodeStatus.starting)
    private let control: NodeControl
    private let reporter: CommandReporter
    /// A stop or restart being carried out: finished when the node deregisters.
    private let exitCommand = Mutex<(command: NodeCommand, message: String)?>(nil)

    /// - Parameters:
    ///   - registry: where the record lives, events go and commands are claimed.
    ///   - nodeID: the node's id; a new one unless the caller already has one.
    ///   - interval: time between heartbeats.
    ///   - control: which remote commands the node takes and how it acts on them.
    ///   - record: builds the node's record for a status (called for each write, so stats stay
    ///     current); its `id` and `startedAt` are replaced by the presence's own.
    ///   - logger: where failed writes are logged (once per outage, not per heartbeat).
    public init(
        registry: any PresenceStore,
        nodeID: String = Identifiers.nodeID(),
        interval: Duration = .seconds(1),
        control: NodeControl = .none,
        logger: Logger,
        record: @escaping @Sendable (NodeStatus) -> NodeRecord
    ) {
        self.registry = registry
        self.nodeID = nodeID
        self.interval = interval
        self.control = control
        self.reporter = CommandReporter(registry: registry, logger: logger)
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
                continue
            }
            await self.takeCommands()
        }
    }

    // MARK: remote commands

    /// Claims the commands addressed to this node that it handles, and acts on each.
    public func takeCommands() async {
        let actions = self.control.actions
        guard !actions.isEmpty else { return }
        let commands: [NodeCommand]
        do {
            commands = try await self.registry.claimCommands(targets: [self.nodeID], actions: actions, actor: self.nodeID, now: Date())
        } catch {
            self.logger.debug("cannot read commands; will ask again with the next heartbeat", metadata: ["error": "\(error)"])
            return
        }
        for command in commands { await self.act(on: command) }
    }

    private func act(on command: NodeCommand) async {
        let record = self.makeRecord(self.status)
        self.logger.notice("\(command.action.rawValue) asked", metadata: ["command": "\(command.shortID)", "by": "\(command.issuedBy)"])
        await self.reporter.acknowledged(command, nodeID: self.nodeID, service: record.service, by: "\(record.kind.rawValue) \(record.service) at \(record.address)")
        do {
            switch command.action {
            case .register, .unregister:
                await self.finish(command, state: .done, try await self.changeRegistration(to: command.action == .register))
            default:
                guard let handler = self.control.handlers[command.action] else {
                    throw SkyError(.configuration, "this node does not take \(command.action.rawValue)")
                }
                switch try await handler(command) {
                case .done(let message):
                    await self.finish(command, state: .done, message)
                case .afterDeregistering(let message):
                    self.exitCommand.withLock { $0 = (command, message) }
                }
            }
        } catch {
            let message = (error as? SkyError)?.message ?? "\(error)"
            self.logger.warning("\(command.action.rawValue) refused: \(message)", metadata: ["command": "\(command.shortID)"])
            await self.finish(command, state: .failed, message)
        }
    }

    /// `unregister` takes the node out of rotation (status `unregistered`), `register` puts it
    /// back; written at once so routers see it within one cache refresh.
    private func changeRegistration(to registered: Bool) async throws -> String {
        let (from, to) = registered ? (NodeStatus.unregistered, NodeStatus.ready) : (NodeStatus.ready, NodeStatus.unregistered)
        let previous = self.statusBox.withLock { status in
            defer { if status == from { status = to } }
            return status
        }
        if previous == to { return "already \(to.rawValue)" }
        guard previous == from else { throw SkyError(.configuration, "the node is \(previous.rawValue); only a \(from.rawValue) node can be \(registered ? "registered" : "unregistered")") }
        let record = self.makeRecord(to)
        _ = try await self.registry.heartbeat(nodeID: record.id, status: to, stats: record.stats, at: Date())
        self.logger.notice(registered ? "registered again: taking work" : "unregistered: up, but routers no longer choose this node")
        return registered ? "back in rotation (ready)" : "out of rotation (unregistered); still running"
    }

    private func finish(_ command: NodeCommand, state: NodeCommand.State, _ message: String) async {
        await self.reporter.finish(command, state: state, message, nodeID: self.nodeID, service: self.makeRecord(self.status).service)
    }

    /// Marks the node draining, locally and in the registry, so routers stop choosing it.
    public func announceDraining() async {
        self.statusBox.withLock { $0 = .draining }
        let record = self.makeRecord(.draining)
        _ = try? await self.registry.heartbeat(nodeID: record.id, status: .draining, stats: record.stats, at: Date())
    }

    /// Removes the record and logs why; finishes the stop or restart command that caused it.
    public func deregister(reason: String = "stopped gracefully") async {
        let record = self.makeRecord(.draining)
        let exit = self.exitCommand.withLock { $0 }
        let reason = exit.map { "\($0.command.action.rawValue) by command \($0.command.shortID) (\($0.command.issuedBy))" } ?? reason
        do {
            try await self.registry.deregister(nodeID: record.id)
            try await self.registry.record(RegistryEvent(kind: "deregistered", nodeID: record.id, service: record.service, message: reason))
            self.logger.info("deregistered")
        } catch {
            self.logger.error("cannot deregister; the reaper will remove the record", metadata: ["error": "\(error)"])
        }
        if let exit { await self.finish(exit.command, state: .done, exit.message) }
    }

    /// Registers as ready, heartbeats until graceful shutdown, then deregisters.
    public func run() async throws {
        await self.register(status: .ready)
        await cancelWhenGracefulShutdown { await self.heartbeatLoop() }
        await self.announceDraining()
        await self.deregister()
    }
}
