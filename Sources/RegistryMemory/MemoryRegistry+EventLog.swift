public import RegistryKit
import Synchronization

/// ``EventLog``: events in the order recorded, the newest 10,000 kept.
extension MemoryRegistry {
    /// Appends the event, keeping the newest ``eventsKept``.
    public func record(_ event: RegistryEvent) async throws {
        self.state.withLock { state in
            state.events.append(event)
            if state.events.count > Self.eventsKept { state.events.removeFirst(state.events.count - Self.eventsKept) }
        }
    }

    /// The newest first.
    public func events(limit: Int) async throws -> [RegistryEvent] {
        self.state.withLock { Array($0.events.suffix(limit).reversed()) }
    }
}
