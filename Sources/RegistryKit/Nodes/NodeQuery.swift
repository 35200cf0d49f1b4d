import SkyLib
/// A filter over nodes: every field that is set must match.
public struct NodeQuery: Sendable, Hashable {
    /// Only nodes of this kind.
    public var kind: NodeKind?
    /// Only nodes of this service (or role name).
    public var service: String?
    /// A `VersionSelector` spelling: `1.2.0`, `1.*`, `*`.
    public var version: String?
    /// Only nodes in this region.
    public var region: String?
    /// Only nodes on this machine.
    public var host: String?
    /// Only nodes in this status.
    public var status: NodeStatus?

    /// Creates a `NodeQuery` from its parts.
    public init(
        kind: NodeKind? = nil,
        service: String? = nil,
        version: String? = nil,
        region: String? = nil,
        host: String? = nil,
        status: NodeStatus? = nil
    ) {
        self.kind = kind
        self.service = service
        self.version = version
        self.region = region
        self.host = host
        self.status = status
    }

    /// Matches every node.
    public static let all = NodeQuery()

    /// Whether `node` passes the filter.
    public func matches(_ node: NodeRecord) -> Bool {
        if let kind, node.kind != kind { return false }
        if let service, node.service != service { return false }
        if let region, node.region != region { return false }
        if let host, node.host != host { return false }
        if let status, node.status != status { return false }
        if let version {
            guard let selector = VersionSelector(version), selector.matches(node.version) else { return false }
        }
        return true
    }
}
