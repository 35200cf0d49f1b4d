import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``EventLog``: the event log in table `events`, the newest 10,000 kept.
extension SQLiteRegistry {
    /// Appends the event and trims the log to its newest 10,000 in the same transaction, so the
    /// file never grows with a cluster's history.
    public func record(_ event: RegistryEvent) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO events (at, kind, nodeID, service, message) VALUES (?, ?, ?, ?, ?)",
                arguments: [event.at.timeIntervalSince1970, event.kind, event.nodeID, event.service, event.message]
            )
            // The log is for recent history; keep it from growing without bound.
            try db.execute(sql: "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - 10000")
        }
    }

    /// The newest first, by the insertion sequence rather than the timestamp: events from processes
    /// with skewed clocks still list in the order the registry saw them.
    public func events(limit: Int) async throws -> [RegistryEvent] {
        try await self.read("events") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY seq DESC LIMIT ?", arguments: [limit]).map { row in
                RegistryEvent(
                    at: Date(timeIntervalSince1970: row["at"]),
                    kind: row["kind"],
                    nodeID: row["nodeID"],
                    service: row["service"],
                    message: row["message"]
                )
            }
        }
    }
}
