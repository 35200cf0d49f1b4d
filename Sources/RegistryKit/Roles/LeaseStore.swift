public import Foundation
import SkyLib

/// Named leases with an expiry: one holder at a time (the active reaper).
public protocol LeaseStore: Sendable {
    /// Takes or renews lease `name` for `holder` until `now + duration`.
    /// - Returns: `false` when another holder has the lease and it has not expired.
    func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool
}
