public import Foundation
import GRDB
public import RegistryKit
public import SkyLib

/// ``DedupeStore``: dedupe keys in table `dedupe`: one row per route and key, `running` (with its owner and
/// `runningUntil`) or `done` (with the answer and `expiresAt`). Each call is one write
/// transaction, so SQLite's single writer makes claims exclusive.
extension SQLiteRegistry {
    /// Reads the key and decides in the same write transaction, so two routers claiming one key at
    /// once see each other's claim: SQLite's single writer serialises them. A claim that ran out
    /// (done past `expiresAt`, or running past `runningUntil`) is taken over by the upsert. Now and
    /// then expired answers are deleted, so the table stays the size of one window.
    public func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        try await self.write { db in
            // One transaction (the write queue's): read, decide, claim.
            if let row = try Row.fetchOne(db, sql: "SELECT state, owner, answer, expiresAt, runningUntil FROM dedupe WHERE route = ? AND key = ?", arguments: [route, key]) {
                let state: String = row["state"]
                let stale = state == "done" ? (row["expiresAt"] as Double) < now.timeIntervalSince1970 : (row["runningUntil"] as Double) < now.timeIntervalSince1970
                if !stale {
                    if state == "done", let text: String = row["answer"], let answer = try? JSONParser.parse(text) { return .done(answer) }
                    return .running(owner: row["owner"])
                }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO dedupe (route, key, state, owner, answer, expiresAt, runningUntil) VALUES (?, ?, 'running', ?, NULL, ?, ?)",
                arguments: [route, key, owner, expiresAt.timeIntervalSince1970, runningUntil.timeIntervalSince1970]
            )
            // Now and then, forget what has run out.
            if Int.random(in: 0..<256) == 0 {
                try db.execute(sql: "DELETE FROM dedupe WHERE state = 'done' AND expiresAt < ?", arguments: [now.timeIntervalSince1970])
            }
            return .claimed
        }
    }

    /// Moves the claim's `runningUntil` only while `owner` still holds it running; the changed-row
    /// count says whether it did.
    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE dedupe SET runningUntil = ? WHERE route = ? AND key = ? AND owner = ? AND state = 'running'",
                arguments: [runningUntil.timeIntervalSince1970, route, key, owner]
            )
            return db.changesCount > 0
        }
    }

    /// Stores the answer under the owner's claim only: a claim that was lost to another router (it
    /// ran out) is not overwritten with this answer.
    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE dedupe SET state = 'done', answer = ? WHERE route = ? AND key = ? AND owner = ?",
                arguments: [JSONWriter.string(answer), route, key, owner]
            )
        }
    }

    /// Deletes the owner's running claim, so the next request with the key runs; a finished answer
    /// is never released.
    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM dedupe WHERE route = ? AND key = ? AND owner = ? AND state = 'running'", arguments: [route, key, owner])
        }
    }
}
