public import Foundation
public import RegistryKit
import SkyLib

/// ``FailedStore``: items in collection `failed`, one document each (the item's JSON, `_id` its
/// id); a move is one `findAndModify` conditional on the state, so exactly one mover wins.
extension MongoRegistry {
    /// Adds new items and fails stored ones again (one attempt more; each read then replaced),
    /// then prunes items done or dropped over a week ago.
    public func recordFailed(_ items: [FailedItem]) async throws {
        guard !items.isEmpty else { return }
        try await self.run("recording failed items") {
            let ids = items.map { JSONValue.string($0.id) }
            let stored = try await self.find("failed", filter: [("_id", .document([("$in", .json(.array(ids)))]))], sort: [])
                .compactMap(FailedItem.init(json:))
            let old = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            for item in items {
                let item = item.recorded(over: old[item.id])
                _ = try await self.pool.command([
                    ("update", "failed"),
                    ("updates", .array([.document([
                        ("q", .document([("_id", .json(.string(item.id)))])),
                        ("u", Self.document(id: item.id, fields: item.json, date: ("failedDate", item.failedAt))),
                        ("upsert", true),
                    ])])),
                ])
            }
            _ = try await self.delete("failed", [
                ("state", .document([("$in", .json(["done", "dropped"]))])),
                ("updatedAt", .document([("$lt", .json(.double(Date().timeIntervalSince1970 - FailedQuery.keptFor)))])),
            ])
        }
    }

    /// The items `query` matches, the latest failure first.
    public func failedItems(_ query: FailedQuery, limit: Int) async throws -> [FailedItem] {
        var filter: [(String, MongoValue)] = []
        if let ids = query.ids { filter.append(("_id", .document([("$in", .json(.array(ids.map { .string($0) })))]))) }
        for (field, value) in [("route", query.route), ("source", query.source?.rawValue), ("resource", query.resource), ("code", query.code)] {
            if let value { filter.append((field, .json(.string(value)))) }
        }
        if let since = query.since { filter.append(("failedAt", .document([("$gte", .json(.double(since.timeIntervalSince1970)))]))) }
        if let node = query.node { filter.append(("node", .json(.string(node)))) }
        if let updatedSince = query.updatedSince { filter.append(("updatedAt", .document([("$gt", .json(.double(updatedSince.timeIntervalSince1970)))]))) }
        if let states = query.states { filter.append(("state", .document([("$in", .json(.array(states.map { .string($0.rawValue) })))]))) }
        return try await self.run("reading failed items") {
            try await self.find("failed", filter: filter, sort: [("failedAt", -1), ("_id", -1)], limit: limit).compactMap(FailedItem.init(json:))
        }
    }

    /// The four fields counted, not the documents (their inputs stay on the server); counted
    /// here, so it needs nothing of the server beyond `find`.
    public func failedCounts(states: Set<FailedItem.State>) async throws -> [FailedCount] {
        guard !states.isEmpty else { return [] }
        return try await self.run("counting failed items") {
            let rows = try await self.find(
                "failed", filter: [("state", .document([("$in", .json(.array(states.map { .string($0.rawValue) })))]))], sort: [],
                projection: ["route", "source", "resource", "state"]
            )
            return FailedCount.summing(rows.compactMap { row in
                guard let route = row["route"]?.stringValue, let source = row["source"]?.stringValue.flatMap(FailedItem.Source.init(rawValue:)),
                    let state = row["state"]?.stringValue.flatMap(FailedItem.State.init(rawValue:))
                else { return nil }
                return FailedCount(route: route, source: source, resource: row["resource"]?.stringValue ?? "", state: state, count: 1)
            })
        }
    }

    /// One `findAndModify` whose query names the states the mover saw: of several movers exactly
    /// one matches.
    public func moveFailed(
        id: String, from: Set<FailedItem.State>, updatedBefore: Date?, to: FailedItem.State, actor: String, note: String, now: Date
    ) async throws -> FailedItem? {
        var query: [(String, MongoValue)] = [
            ("_id", .json(.string(id))), ("state", .document([("$in", .json(.array(from.map { .string($0.rawValue) })))])),
        ]
        if let updatedBefore { query.append(("updatedAt", .document([("$lt", .json(.double(updatedBefore.timeIntervalSince1970)))]))) }
        return try await self.run("moving a failed item") {
            let reply = try await self.pool.command([
                ("findAndModify", "failed"),
                ("query", .document(MongoDocument(query))),
                ("update", .document([("$set", .document([
                    ("state", .json(.string(to.rawValue))), ("actor", .json(.string(actor))), ("note", .json(.string(note))),
                    ("updatedAt", .json(.double(now.timeIntervalSince1970))),
                ]))])),
                ("new", true),
            ])
            guard let document = reply["value"], document != .null else { return nil }
            return FailedItem(json: document)
        }
    }
}
