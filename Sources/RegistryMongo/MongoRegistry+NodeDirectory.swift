public import Foundation
public import RegistryKit
import SkyLib

/// ``NodeDirectory``: node records in collection `nodes`, `_id` the node id.
///
/// Times are stored as seconds since 1970 (doubles), as in the SQLite driver, so the
/// conformance suite compares the two exactly; only `expireAt` is a BSON date, because a TTL
/// index reads nothing else. That TTL index (ten TTLs after the last heartbeat, at least a
/// minute) removes what every reaper missed: a cluster whose reapers are all down does not
/// keep dead nodes for ever, while a reaper that runs removes them long before.
extension MongoRegistry {
    /// Two commands: the stale records of another process at this address and kind go first (a
    /// restarted process is a new node), then an upsert by `_id`. Not one transaction: MongoDB
    /// needs a replica set for those, and a registry on one server must work too; a router reading
    /// between the two sees the old record at most one refresh longer.
    public func register(_ node: NodeRecord) async throws {
        try await self.run("registering \(node.service)") {
            _ = try await self.pool.command([
                ("delete", "nodes"),
                ("deletes", .array([.document([
                    ("q", .document([("address", .json(.string(node.address))), ("kind", .json(.string(node.kind.rawValue))), ("_id", .document([("$ne", .json(.string(node.id)))]))])),
                    ("limit", 0),
                ])])),
            ])
            _ = try await self.pool.command([
                ("update", "nodes"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(node.id)))])),
                    ("u", .document([("$set", .document(MongoDocument(Self.fields(of: node))))])),
                    ("upsert", true),
                ])])),
            ])
        }
    }

    /// A `findAndModify` by `_id` sets the heartbeat, status and stats and answers whether the
    /// record still exists (`nil`: it was reaped, and the caller registers again); then the TTL
    /// backstop's `expireAt` moves, computed from the stored TTL.
    public func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try await self.run("heartbeat") {
            // The TTL backstop needs the node's ttl; it is stored, so compute expiry server-side
            // would need an aggregation update: keep it simple and read it from the record.
            let reply = try await self.pool.command([
                ("findAndModify", "nodes"),
                ("query", .document([("_id", .json(.string(nodeID)))])),
                ("update", .document([("$set", .document([
                    ("heartbeatAt", .json(.double(at.timeIntervalSince1970))),
                    ("status", .json(.string(status.rawValue))),
                    ("stats", .json(.object(stats.mapValues { .int($0) }))),
                ]))])),
                ("new", true),
            ])
            guard let node = reply["value"], node != .null else { return false }
            let ttl = node["ttl"]?.doubleValue ?? 3
            _ = try await self.pool.command([
                ("update", "nodes"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(nodeID)))])),
                    ("u", .document([("$set", .document([("expireAt", .date(Self.expiry(at: at, ttl: ttl)))]))])),
                ])])),
            ])
            return true
        }
    }

    /// Deletes the record by `_id`; a record already gone is not an error.
    public func deregister(nodeID: String) async throws {
        try await self.run("deregistering") {
            _ = try await self.delete("nodes", [("_id", .json(.string(nodeID)))])
        }
    }

    /// Every record, by service and start time, following the cursor to the end (a cluster's nodes
    /// fit in a few batches).
    public func nodes() async throws -> [NodeRecord] {
        try await self.run("reading nodes") {
            try await self.find("nodes", filter: [], sort: [("service", 1), ("startedAt", 1)]).map(Self.node(from:))
        }
    }

    /// Deletes the record only if its heartbeat is still older than `before`, in the filter of the
    /// one delete: a node whose heartbeat landed in between survives.
    public func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try await self.run("reaping") {
            try await self.delete("nodes", [("_id", .json(.string(nodeID))), ("heartbeatAt", .document([("$lt", .json(.double(before.timeIntervalSince1970)))]))]) > 0
        }
    }
}
