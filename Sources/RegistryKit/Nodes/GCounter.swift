/// A grow-only counter per name, replicated over nodes (a CRDT, as in the clustering talk the
/// original system grew into): each node owns its own count, a merge keeps the larger value per
/// node, and the total is the sum over nodes. Merging is commutative, associative and
/// idempotent, so copies read in any order, or twice, agree; a node that restarts is a new
/// node (a new id) and a node that died keeps its last count.
public struct GCounter: Sendable, Equatable {
    /// Counts by name, then by node id.
    public private(set) var values: [String: [String: Int64]]

    /// An empty counter.
    public init() {
        self.values = [:]
    }

    /// Merges one node's value for `name`: the larger of what is known and `value` stays.
    public mutating func merge(name: String, nodeID: String, value: Int64) {
        self.values[name, default: [:]][nodeID] = max(self.values[name]?[nodeID] ?? 0, value)
    }

    /// Merges every count of `other`.
    public mutating func merge(_ other: GCounter) {
        for (name, nodes) in other.values {
            for (node, value) in nodes { self.merge(name: name, nodeID: node, value: value) }
        }
    }

    /// The cluster's total for `name`: the sum over nodes.
    public func total(_ name: String) -> Int64 {
        self.values[name]?.values.reduce(0, +) ?? 0
    }

    /// How many nodes have counted `name`.
    public func nodes(_ name: String) -> Int {
        self.values[name]?.count ?? 0
    }

    /// Every name counted.
    public var names: [String] { self.values.keys.sorted() }
}
