import SkyLib

/// A change to the nodes a query matches (``RegistryCache/changes(matching:)``).
public enum NodeChange: Sendable, Hashable {
    case added(NodeRecord)
    case removed(NodeRecord)
    /// Same node, with another status, version, address, region or host.
    case changed(from: NodeRecord, to: NodeRecord)

    /// The node as it is now (as it was last, for `.removed`).
    public var node: NodeRecord {
        switch self {
        case .added(let node), .removed(let node), .changed(_, let node): node
        }
    }
}
