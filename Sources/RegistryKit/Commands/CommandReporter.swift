import Foundation
public import Logging
import SkyLib

/// Records what an actor does with a claimed command: the command's state in the registry and
/// an event in the cluster's log (`command-acknowledged`, `command-done`, `command-failed`).
/// Used by nodes acting for themselves (``NodePresence``) and by daemons acting for their
/// programs, so both acknowledge the same way.
public struct CommandReporter: Sendable {
    /// Where outcomes and their events are written.
    public let registry: any EventLog & CommandQueue
    /// Where a report that cannot be written is logged.
    public let logger: Logger

    /// Creates a `CommandReporter` from its parts.
    public init(registry: any EventLog & CommandQueue, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// Logs that `command` was claimed, about node `nodeID` of `service`, saying who acts.
    public func acknowledged(_ command: NodeCommand, nodeID: String, service: String, by actor: String) async {
        await self.record("command-acknowledged", nodeID: nodeID, service: service, "\(command.action.rawValue) (command \(command.shortID), \(command.issuedBy)) acknowledged by \(actor)")
    }

    /// Finishes a claimed command as `state` (`done` or `failed`) with `message`.
    public func finish(_ command: NodeCommand, state: NodeCommand.State, _ message: String, nodeID: String, service: String) async {
        do {
            _ = try await self.registry.updateCommand(id: command.id, from: .acknowledged, to: state, result: message, now: Date())
        } catch {
            self.logger.error("cannot record the outcome of command \(command.shortID)", metadata: ["error": "\(error)"])
        }
        await self.record(state == .done ? "command-done" : "command-failed", nodeID: nodeID, service: service, "\(command.action.rawValue) (command \(command.shortID)): \(message)")
    }

    private func record(_ kind: String, nodeID: String, service: String, _ message: String) async {
        do {
            try await self.registry.record(RegistryEvent(kind: kind, nodeID: nodeID, service: service, message: message))
        } catch {
            self.logger.error("cannot record event \(kind)", metadata: ["error": "\(error)", "message": "\(message)"])
        }
    }
}
