public import Foundation
import GRDB
import RegistryKit
import SkyLib

/// ``LeaseStore``: leases in table `leases`: one row per name, taken or renewed in one conditional upsert.
extension SQLiteRegistry {
    /// One conditional upsert: it takes the lease when nobody holds it, renews it for its holder,
    /// and takes it over once it expired; two reapers racing for it cannot both win, since the
    /// statement is atomic and its changed-row count is the answer.
    public func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        try await self.write { db in
            // One statement, so two processes racing for the lease cannot both win.
            try db.execute(
                sql: """
                    INSERT INTO leases (name, holder, expiresAt) VALUES (?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expiresAt = excluded.expiresAt
                    WHERE leases.holder = excluded.holder OR leases.expiresAt < ?
                    """,
                arguments: [name, holder, now.timeIntervalSince1970 + duration, now.timeIntervalSince1970]
            )
            return db.changesCount > 0
        }
    }
}
