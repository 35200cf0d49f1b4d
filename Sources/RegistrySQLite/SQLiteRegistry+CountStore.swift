public import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``CountStore``: per-node counts in table `counts`, merged with `MAX` (a G-Counter).
extension SQLiteRegistry {
    /// One upsert per name keeping the larger value (`MAX`): a count written twice, late or out of
    /// order never goes back, which is what makes the totals a G-Counter.
    public func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws {
        guard !counts.isEmpty else { return }
        try await self.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO counts (node, name, value, updatedAt) VALUES (?, ?, ?, ?)
                ON CONFLICT (node, name) DO UPDATE SET value = MAX(value, excluded.value), updatedAt = excluded.updatedAt
                """)
            for (name, value) in counts.sorted(by: { $0.key < $1.key }) {
                try statement.execute(arguments: [nodeID, name, value, at.timeIntervalSince1970])
            }
        }
    }

    /// Every node's counts, dead nodes' included: their last values stay in the cluster's totals.
    public func counts() async throws -> GCounter {
        try await self.read("counts") { db in
            var counter = GCounter()
            for row in try Row.fetchAll(db, sql: "SELECT node, name, value FROM counts") {
                counter.merge(name: row["name"], nodeID: row["node"], value: row["value"])
            }
            return counter
        }
    }
}
