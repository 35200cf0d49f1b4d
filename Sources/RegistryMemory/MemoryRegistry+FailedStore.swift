public import Foundation
public import RegistryKit
import Synchronization

/// ``FailedStore``: items by id; a move is one locked step, so exactly one mover wins.
extension MemoryRegistry {
    /// Adds new items; an item stored already fails again: back to `failed`, one attempt more.
    /// Items done or dropped over a week ago are pruned, as the other drivers do.
    public func recordFailed(_ items: [FailedItem]) async throws {
        let now = Date()
        self.state.withLock { state in
            for item in items {
                state.failed[item.id] = item.recorded(over: state.failed[item.id])
            }
            state.failed = state.failed.filter { $0.value.state.isOpen || now.timeIntervalSince($0.value.updatedAt) < FailedQuery.keptFor }
        }
    }

    /// The items `query` matches, the latest failure first.
    public func failedItems(_ query: FailedQuery, limit: Int) async throws -> [FailedItem] {
        self.state.withLock { state in
            Array(state.failed.values.filter(query.matches).sorted { ($0.failedAt, $0.id) > ($1.failedAt, $1.id) }.prefix(limit))
        }
    }

    /// The items in `states`, counted.
    public func failedCounts(states: Set<FailedItem.State>) async throws -> [FailedCount] {
        FailedCount.counting(self.state.withLock { Array($0.failed.values) }.filter { states.contains($0.state) })
    }

    /// Moves the item under the one lock, only from the states the mover saw.
    public func moveFailed(
        id: String, from: Set<FailedItem.State>, updatedBefore: Date?, to: FailedItem.State, actor: String, note: String, now: Date
    ) async throws -> FailedItem? {
        self.state.withLock { state in
            guard var item = state.failed[id], from.contains(item.state), updatedBefore.map({ item.updatedAt < $0 }) ?? true else { return nil }
            item.state = to
            item.actor = actor
            item.note = note
            item.updatedAt = now
            state.failed[id] = item
            return item
        }
    }
}
