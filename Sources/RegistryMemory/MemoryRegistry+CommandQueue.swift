public import Foundation
public import RegistryKit
import Synchronization

/// ``CommandQueue``: commands by id; a claim is one locked step, so each command goes to exactly
/// one claimer.
extension MemoryRegistry {
    /// Stores the commands pending.
    public func sendCommands(_ commands: [NodeCommand]) async throws {
        self.state.withLock { state in
            for command in commands { state.commands[command.id] = command }
        }
    }

    /// Marks every pending, unexpired command for `targets` and `actions` acknowledged by `actor`,
    /// under the one lock: a command goes to exactly one claimer.
    public func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        let targets = Set(targets)
        return self.state.withLock { state in
            var claimed: [NodeCommand] = []
            for (id, var command) in state.commands
            where command.state == .pending && command.expiresAt > now && targets.contains(command.target) && actions.contains(command.action) {
                command.state = .acknowledged
                command.actor = actor
                command.updatedAt = now
                state.commands[id] = command
                claimed.append(command)
            }
            return claimed.sorted { $0.issuedAt < $1.issuedAt }
        }
    }

    /// Moves the command only from `from`, so an expired command is never finished.
    public func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        self.state.withLock { state in
            guard var command = state.commands[id], command.state == from else { return false }
            command.state = to
            command.result = result
            command.updatedAt = now
            state.commands[id] = command
            return true
        }
    }

    /// The commands with these ids, in issue order.
    public func commands(ids: [String]) async throws -> [NodeCommand] {
        self.state.withLock { state in ids.compactMap { state.commands[$0] } }.sorted { $0.issuedAt < $1.issuedAt }
    }
}
