public import Foundation
public import RegistryKit
import Synchronization

/// ``CountStore``: per node and name the larger value stays (a G-Counter).
extension MemoryRegistry {
    /// Keeps, per node and name, the larger of the stored and the given value (a G-Counter).
    public func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws {
        self.state.withLock { state in
            for (name, value) in counts { state.counts[nodeID, default: [:]][name] = max(state.counts[nodeID]?[name] ?? value, value) }
        }
    }

    /// Every node's counts, merged.
    public func counts() async throws -> GCounter {
        self.state.withLock { state in
            var counter = GCounter()
            for (node, values) in state.counts {
                for (name, value) in values { counter.merge(name: name, nodeID: node, value: value) }
            }
            return counter
        }
    }
}
