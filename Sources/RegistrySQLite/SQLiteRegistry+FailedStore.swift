public import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``FailedStore``: items in table `failed` (the item's JSON, with the columns queries filter
/// on); each record and move is one write transaction, which SQLite's single writer makes
/// exclusive.
extension SQLiteRegistry {
    /// Adds new items and fails stored ones again (one attempt more), then prunes items done or
    /// dropped over a week ago, in one transaction: a node's whole buffer of reports is one
    /// write, so a burst of rejected CSV rows costs one fsync, not one per row.
    public func recordFailed(_ items: [FailedItem]) async throws {
        guard !items.isEmpty else { return }
        try await self.write { db in
            for item in items {
                let old = try String.fetchOne(db, sql: "SELECT document FROM failed WHERE id = ?", arguments: [item.id])
                    .flatMap { try? JSONParser.parse($0) }.flatMap(FailedItem.init(json:))
                try Self.store(item.recorded(over: old), in: db)
            }
            try db.execute(
                sql: "DELETE FROM failed WHERE state IN ('done', 'dropped') AND updatedAt < ?",
                arguments: [Date().timeIntervalSince1970 - FailedQuery.keptFor]
            )
        }
    }

    /// The items `query` matches, the latest failure first.
    ///
    /// The filters the list commands use most are columns (route, source, resource, code,
    /// state, times), so SQLite filters them before reading any document; `node` is read from
    /// the document itself (only the node's own count of drops asks for it, on few rows).
    /// Ids are bound one placeholder each, as SQLite wants; an empty id list or state set
    /// matches nothing rather than everything.
    public func failedItems(_ query: FailedQuery, limit: Int) async throws -> [FailedItem] {
        var clauses: [String] = []
        var values: [(any DatabaseValueConvertible)?] = []
        if let ids = query.ids {
            guard !ids.isEmpty else { return [] }
            clauses.append("id IN (\(ids.map { _ in "?" }.joined(separator: ",")))")
            values += ids
        }
        for (column, value) in [("route", query.route), ("source", query.source?.rawValue), ("resource", query.resource), ("code", query.code)] {
            if let value {
                clauses.append("\(column) = ?")
                values.append(value)
            }
        }
        if let since = query.since {
            clauses.append("failedAt >= ?")
            values.append(since.timeIntervalSince1970)
        }
        if let node = query.node {
            clauses.append("json_extract(document, '$.node') = ?")
            values.append(node)
        }
        if let updatedSince = query.updatedSince {
            clauses.append("updatedAt > ?")
            values.append(updatedSince.timeIntervalSince1970)
        }
        if let states = query.states {
            guard !states.isEmpty else { return [] }
            clauses.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            values += states.map(\.rawValue)
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        values.append(limit)
        let arguments = StatementArguments(values)
        return try await self.read("failed") { db in
            try String.fetchAll(db, sql: "SELECT document FROM failed \(filter) ORDER BY failedAt DESC, id DESC LIMIT ?", arguments: arguments)
                .compactMap { try? JSONParser.parse($0) }.compactMap(FailedItem.init(json:))
        }
    }

    /// One `GROUP BY` over the columns: no document is read, so the dashboard's refresh costs the
    /// same whatever the inputs weigh; the `state` index narrows it to the open items.
    public func failedCounts(states: Set<FailedItem.State>) async throws -> [FailedCount] {
        guard !states.isEmpty else { return [] }
        let arguments = StatementArguments(states.map { $0.rawValue as (any DatabaseValueConvertible)? })
        let list = states.map { _ in "?" }.joined(separator: ",")
        return try await self.read("failed") { db in
            FailedCount.summing(try Row.fetchAll(
                db, sql: "SELECT route, source, resource, state, COUNT(*) AS n FROM failed WHERE state IN (\(list)) GROUP BY route, source, resource, state",
                arguments: arguments
            ).compactMap { row in
                guard let source = FailedItem.Source(rawValue: row["source"]), let state = FailedItem.State(rawValue: row["state"]) else { return nil }
                return FailedCount(route: row["route"], source: source, resource: row["resource"], state: state, count: row["n"])
            })
        }
    }

    /// Reads and moves the item in one write transaction, only from the states the mover saw:
    /// SQLite's one writer at a time is what makes the move exclusive between processes.
    public func moveFailed(
        id: String, from: Set<FailedItem.State>, updatedBefore: Date?, to: FailedItem.State, actor: String, note: String, now: Date
    ) async throws -> FailedItem? {
        try await self.write { db in
            guard let text = try String.fetchOne(db, sql: "SELECT document FROM failed WHERE id = ?", arguments: [id]),
                var item = (try? JSONParser.parse(text)).flatMap(FailedItem.init(json:)),
                from.contains(item.state), updatedBefore.map({ item.updatedAt < $0 }) ?? true
            else { return nil }
            item.state = to
            item.actor = actor
            item.note = note
            item.updatedAt = now
            try Self.store(item, in: db)
            return item
        }
    }

    /// Writes `item` over any row with its id.
    ///
    /// The whole item is its JSON document (what `sky failed show --json` prints); the columns
    /// beside it repeat what queries filter and sort on, and are always written together with
    /// it, in the caller's transaction.
    static func store(_ item: FailedItem, in db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO failed (id, route, source, resource, code, state, failedAt, updatedAt, document)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                item.id, item.route, item.source.rawValue, item.resource, item.code, item.state.rawValue, item.failedAt.timeIntervalSince1970,
                item.updatedAt.timeIntervalSince1970, JSONWriter.string(item.json),
            ]
        )
    }
}
