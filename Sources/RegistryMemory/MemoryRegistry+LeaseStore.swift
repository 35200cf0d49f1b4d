public import Foundation
import RegistryKit
import Synchronization

/// ``LeaseStore``: one holder per lease name until it expires or its holder renews it.
extension MemoryRegistry {
    /// Takes the lease when free or expired, renews it for its holder, refuses anyone else while it
    /// is live.
    public func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        self.state.withLock { state in
            if let lease = state.leases[name], lease.holder != holder, lease.expiresAt >= now.timeIntervalSince1970 { return false }
            state.leases[name] = (holder, now.timeIntervalSince1970 + duration)
            return true
        }
    }
}
