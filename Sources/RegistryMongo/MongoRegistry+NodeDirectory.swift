public import Foundation
public import RegistryKit
import SkyLib

/// ``NodeDirectory``: node records in collection `nodes`, `_id` the node id; a TTL index on `expireAt` (heartbeat + 10 × TTL) removes what every reaper missed.
extension MongoRegistry {
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

    public func deregister(nodeID: String) async throws {
        try await self.run("deregistering") {
            _ = try await self.delete("nodes", [("_id", .json(.string(nodeID)))])
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await self.run("reading nodes") {
            try await self.find("nodes", filter: [], sort: [("service", 1), ("startedAt", 1)]).map(Self.node(from:))
        }
    }

    public func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try await self.run("reaping") {
            try await self.delete("nodes", [("_id", .json(.string(nodeID))), ("heartbeatAt", .document([("$lt", .json(.double(before.timeIntervalSince1970)))]))]) > 0
        }
    }
}
