public import Foundation
public import SkyLib

/// An order for one node, carried through the registry (`sky stop`, `sky restart`,
/// `sky register`, `sky unregister`, `sky deploy`).
///
/// Life of a command: `sky` writes it **pending**; the node it targets (or that node's daemon)
/// claims it on its next heartbeat, atomically, which makes it **acknowledged** — only one
/// claimer can win, so nothing acts twice; the actor then finishes it **done** or **failed**
/// with a message. A command nobody claimed before `expiresAt` can no longer be claimed, and
/// `sky` marks it **expired** when it gives up waiting, so it cannot act later by surprise.
public struct NodeCommand: Sendable, Hashable {
    /// What the node is asked to do.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        /// Drain, deregister and exit (a daemon's program stays stopped).
        case stop
        /// Drain, deregister and start again as a new node.
        case restart
        /// Take work again after `unregister` (status back to `ready`).
        case register
        /// Stay up but take no new work (status `unregistered`): routers skip the node.
        case unregister
        /// To a daemon: start instances of a service (`service`, `instances` in ``arguments``).
        case deploy

        /// Verb for messages: "stopped", "restarted" …
        public var pastTense: String {
            switch self {
            case .stop: "stopped"
            case .restart: "restarted"
            case .register: "registered"
            case .unregister: "unregistered"
            case .deploy: "deployed"
            }
        }
    }

    /// Where a command is in its life.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case pending, acknowledged, done, failed, expired

        /// Whether the command has finished, one way or another.
        public var isFinal: Bool { self == .done || self == .failed || self == .expired }
    }

    /// Unique id (UUID).
    public var id: String
    /// What to do.
    public var action: Action
    /// The node that must act (for `deploy`, the daemon).
    public var target: String
    /// Details of the order (`deploy`: `service`, `instances`).
    public var arguments: [String: String]
    /// Who asked, for the event log: `sky stop by alice@ops-1`.
    public var issuedBy: String
    /// When it was sent.
    public var issuedAt: Date
    /// Unclaimed after this, the command is void.
    public var expiresAt: Date
    /// Where it is in its life: pending, acknowledged, then done, failed or expired.
    public var state: State
    /// The node that claimed it (the target, or its daemon).
    public var actor: String
    /// What came of it, for a person.
    public var result: String
    /// When its state last changed.
    public var updatedAt: Date

    /// Creates a `NodeCommand` from its parts.
    public init(
        id: String = Identifiers.nodeID(),
        action: Action,
        target: String,
        arguments: [String: String] = [:],
        issuedBy: String,
        issuedAt: Date = Date(),
        expiresIn: TimeInterval = 30,
        state: State = .pending,
        actor: String = "",
        result: String = "",
        updatedAt: Date? = nil
    ) {
        self.id = id
        self.action = action
        self.target = target
        self.arguments = arguments
        self.issuedBy = issuedBy
        self.issuedAt = issuedAt
        self.expiresAt = issuedAt.addingTimeInterval(expiresIn)
        self.state = state
        self.actor = actor
        self.result = result
        self.updatedAt = updatedAt ?? issuedAt
    }

    /// A short id for messages.
    public var shortID: String { Identifiers.short(self.id) }
}

extension NodeCommand {
    /// The command as JSON (stored by both registries, printed by `sky … --json`).
    public var json: JSONValue {
        [
            "id": .string(self.id), "action": .string(self.action.rawValue), "target": .string(self.target),
            "arguments": .object(self.arguments.mapValues { .string($0) }), "issuedBy": .string(self.issuedBy),
            "issuedAt": .double(self.issuedAt.timeIntervalSince1970), "expiresAt": .double(self.expiresAt.timeIntervalSince1970),
            "state": .string(self.state.rawValue), "actor": .string(self.actor), "result": .string(self.result),
            "updatedAt": .double(self.updatedAt.timeIntervalSince1970),
        ]
    }

    /// Reads ``json`` back; `nil` when a required field is missing or unknown.
    public init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue ?? json["_id"]?.stringValue,
            let action = json["action"]?.stringValue.flatMap(Action.init(rawValue:)),
            let target = json["target"]?.stringValue,
            let state = json["state"]?.stringValue.flatMap(State.init(rawValue:))
        else { return nil }
        let issuedAt = Date(timeIntervalSince1970: json["issuedAt"]?.doubleValue ?? 0)
        self.init(
            id: id, action: action, target: target,
            arguments: (json["arguments"]?.objectValue ?? [:]).compactMapValues(\.stringValue),
            issuedBy: json["issuedBy"]?.stringValue ?? "", issuedAt: issuedAt, state: state,
            actor: json["actor"]?.stringValue ?? "", result: json["result"]?.stringValue ?? "",
            updatedAt: Date(timeIntervalSince1970: json["updatedAt"]?.doubleValue ?? 0)
        )
        self.expiresAt = Date(timeIntervalSince1970: json["expiresAt"]?.doubleValue ?? 0)
    }
}
