import SkyLib
/// What a node does with the commands addressed to it through the registry (``NodeCommand``).
///
/// ``NodePresence`` claims, on each heartbeat, the commands whose action has a handler here,
/// runs the handler, and finishes the command with its outcome. `register` and `unregister`
/// need no handler: they change the node's status, which the presence owns. Actions without a
/// handler are left in the registry for someone else to claim — the node's daemon, which
/// stops and restarts the programs it supervises.
public struct NodeControl: Sendable {
    /// What came of a handled command.
    public enum Outcome: Sendable, Hashable {
        /// Finished now, with this message.
        case done(String)
        /// Finished once the node has drained and deregistered (stop, restart): the presence
        /// marks it done with this message at that moment.
        case afterDeregistering(String)
    }

    /// Acts on one command; throws a `SkyError` to refuse it with a reason.
    public typealias Handler = @Sendable (NodeCommand) async throws -> Outcome

    /// The actions handled, other than `register` and `unregister`.
    public var handlers: [NodeCommand.Action: Handler]
    /// Whether the node claims `register` and `unregister` (it changes its own status).
    public var handlesStatus: Bool

    /// Creates a `NodeControl` from its parts.
    public init(handlers: [NodeCommand.Action: Handler] = [:], handlesStatus: Bool = true) {
        self.handlers = handlers
        self.handlesStatus = handlesStatus
    }

    /// The actions this node claims.
    public var actions: Set<NodeCommand.Action> {
        var actions = Set(self.handlers.keys)
        if self.handlesStatus { actions.formUnion([.register, .unregister]) }
        return actions
    }

    /// Claims nothing (tests, nodes that must not be driven remotely).
    public static let none = NodeControl(handlesStatus: false)
}
