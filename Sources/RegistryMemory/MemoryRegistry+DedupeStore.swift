public import Foundation
public import RegistryKit
public import SkyLib
import Synchronization

/// ``DedupeStore``: keys by route and key, each call one locked step (claims are exclusive).
extension MemoryRegistry {
    /// Decides under the one lock, so two claims of one key never both win: the first runs, a later
    /// one sees it running or its answer, and a claim that ran out is taken over.
    public func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        self.state.withLock { state in
            let id = route + "/" + key
            if let entry = state.dedupe[id] {
                let stale = entry.done ? entry.expiresAt < now.timeIntervalSince1970 : entry.runningUntil < now.timeIntervalSince1970
                if !stale {
                    if entry.done, let answer = entry.answer { return .done(answer) }
                    return .running(owner: entry.owner)
                }
            }
            state.dedupe[id] = DedupeEntry(done: false, owner: owner, expiresAt: expiresAt.timeIntervalSince1970, runningUntil: runningUntil.timeIntervalSince1970)
            return .claimed
        }
    }

    /// Moves the owner's running claim's `runningUntil`; `false` when the owner no longer holds it.
    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        self.state.withLock { state in
            let id = route + "/" + key
            guard var entry = state.dedupe[id], !entry.done, entry.owner == owner else { return false }
            entry.runningUntil = runningUntil.timeIntervalSince1970
            state.dedupe[id] = entry
            return true
        }
    }

    /// Stores the answer under the owner's claim only.
    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        self.state.withLock { state in
            let id = route + "/" + key
            guard var entry = state.dedupe[id], entry.owner == owner else { return }
            entry.done = true
            entry.answer = answer
            state.dedupe[id] = entry
        }
    }

    /// Forgets the owner's running claim, so the next request with the key runs.
    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        self.state.withLock { state in
            let id = route + "/" + key
            if let entry = state.dedupe[id], !entry.done, entry.owner == owner { state.dedupe.removeValue(forKey: id) }
        }
    }
}
