public import Foundation
public import RegistryKit
import Synchronization

/// ``NodeDirectory``: node records by id; registering removes other records of the same kind at
/// the same address (a restarted process is a new node), as the real drivers do.
extension MemoryRegistry {
    /// Removes the records of another node of the same kind at the same address, then stores this
    /// one (a restarted process is a new node, as in the real drivers).
    public func register(_ node: NodeRecord) async throws {
        self.state.withLock { state in
            state.nodes = state.nodes.filter { $0.value.address != node.address || $0.value.kind != node.kind || $0.key == node.id }
            state.nodes[node.id] = node
        }
    }

    /// Updates the record when it exists; `false` when it was reaped (the caller registers again).
    public func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        self.state.withLock { state in
            guard var node = state.nodes[nodeID] else { return false }
            node.heartbeatAt = at
            node.status = status
            node.stats = stats
            state.nodes[nodeID] = node
            return true
        }
    }

    /// Removes the record; one already gone is not an error.
    public func deregister(nodeID: String) async throws {
        _ = self.state.withLock { $0.nodes.removeValue(forKey: nodeID) }
    }

    /// Every record, by service and start time (the order the real drivers answer in).
    public func nodes() async throws -> [NodeRecord] {
        self.state.withLock { Array($0.nodes.values) }.sorted { ($0.service, $0.startedAt) < ($1.service, $1.startedAt) }
    }

    /// Removes the record only if its heartbeat is still older than `before`, checked and removed
    /// under one lock.
    public func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        self.state.withLock { state in
            guard let node = state.nodes[nodeID], node.heartbeatAt < before else { return false }
            state.nodes.removeValue(forKey: nodeID)
            return true
        }
    }
}
