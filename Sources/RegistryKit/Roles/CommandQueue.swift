public import Foundation
import SkyLib

/// Commands for nodes (`sky stop`, `sky unregister` …), claimed by the node they address.
public protocol CommandQueue: Sendable {
    /// Stores commands for nodes, pending (``NodeCommand``). Commands older than a day are pruned.
    func sendCommands(_ commands: [NodeCommand]) async throws

    /// Claims the pending, unexpired commands addressed to `targets` whose action is in
    /// `actions`: each becomes `acknowledged` by `actor`. Claiming is atomic: when several
    /// processes claim at once, each command goes to exactly one of them.
    /// - Returns: the commands claimed, as stored after the claim.
    func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand]

    /// Moves command `id` from state `from` to `to` with `result`, only if it is still in `from`
    /// (so an expired command is never finished, nor a claimed one expired).
    /// - Returns: whether it moved.
    func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool

    /// The stored commands with these ids (unknown ids are left out).
    func commands(ids: [String]) async throws -> [NodeCommand]
}
