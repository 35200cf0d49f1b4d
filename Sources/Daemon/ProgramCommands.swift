import Foundation
public import Logging
public import ServiceLifecycle
import SkyLib
public import RegistryKit

/// Carries out `stop` and `restart` for the nodes of the daemon's own programs.
///
/// Its programs run with `SKYNET_SUPERVISOR` set and leave these two commands to the daemon:
/// only the daemon can stop a program without starting it again, or restart it without
/// counting a crash. A program's node is found by its pid on this host, so programs that are
/// not `sky` (a Python service) are stopped and restarted the same way.
public struct ProgramCommands: Service {
    /// The daemon whose programs the commands stop and restart.
    public let daemon: Daemon
    /// Where commands are claimed and programs' records are read.
    public let registry: any NodeDirectory & EventLog & CommandQueue
    /// The daemon's node id: the actor recorded on the commands it claims.
    public let daemonNodeID: String
    /// How often pending commands are claimed.
    public let interval: Duration
    private let hostNames: Set<String>
    private let logger: Logger
    private let reporter: CommandReporter

    /// Creates a `ProgramCommands` from its parts.
    public init(daemon: Daemon, registry: any NodeDirectory & EventLog & CommandQueue, daemonNodeID: String, interval: Duration = .milliseconds(500), logger: Logger) {
        self.daemon = daemon
        self.registry = registry
        self.daemonNodeID = daemonNodeID
        self.interval = interval
        self.logger = logger
        self.reporter = CommandReporter(registry: registry, logger: logger)
        // Swift's and Python's spellings of this host's name can differ (short or full).
        var names: Set<String> = [ProcessInfo.processInfo.hostName]
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count) == 0 {
            names.insert(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.hostNames = names
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                await self.takeCommands()
            }
        }
    }

    /// Claims the pending stop and restart commands for this daemon's programs, and acts.
    public func takeCommands() async {
        let pids = Set(self.daemon.supervisors.compactMap(\.pid))
        guard !pids.isEmpty else { return }
        do {
            let nodes = try await self.registry.nodes().filter { pids.contains($0.pid) && self.hostNames.contains($0.host) && $0.kind != .daemon }
            guard !nodes.isEmpty else { return }
            let commands = try await self.registry.claimCommands(
                targets: nodes.map(\.id), actions: [.stop, .restart], actor: self.daemonNodeID, now: Date()
            )
            // Each stop waits for its program to drain (up to 10 s): act on them side by side.
            await withDiscardingTaskGroup { group in
                for command in commands {
                    guard let node = nodes.first(where: { $0.id == command.target }) else { continue }
                    group.addTask { await self.act(on: command, node: node) }
                }
            }
        } catch {
            self.logger.debug("cannot read commands; will ask again", metadata: ["error": "\(error)"])
        }
    }

    private func act(on command: NodeCommand, node: NodeRecord) async {
        await self.reporter.acknowledged(command, nodeID: node.id, service: node.service, by: "the daemon of \(node.service) at \(node.address)")
        guard let supervisor = self.daemon.supervisor(pid: node.pid) else {
            await self.finish(command, node: node, .failed, "pid \(node.pid) is no longer one of this daemon's programs")
            return
        }
        let outcome = command.action == .stop ? await supervisor.stop() : await supervisor.restart()
        let message = command.action == .stop
            ? "\(supervisor.name): \(outcome); the daemon will not start it again"
            : "\(supervisor.name): \(outcome); started again by the daemon"
        self.logger.notice("\(command.action.rawValue) on request: \(message)", metadata: ["command": "\(command.shortID)"])
        await self.finish(command, node: node, .done, message)
    }

    private func finish(_ command: NodeCommand, node: NodeRecord, _ state: NodeCommand.State, _ message: String) async {
        await self.reporter.finish(command, state: state, message, nodeID: node.id, service: node.service)
    }
}
