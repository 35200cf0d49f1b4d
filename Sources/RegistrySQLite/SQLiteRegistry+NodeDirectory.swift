public import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``NodeDirectory``: node records in table `nodes`: one row per node, its stats as JSON. Registering deletes other
/// records of the same kind at the same address first (a restarted process is a new node).
extension SQLiteRegistry {
    public func register(_ node: NodeRecord) async throws {
        try await self.write { db in
            try db.execute(
                sql: "DELETE FROM nodes WHERE address = ? AND kind = ? AND id <> ?",
                arguments: [node.address, node.kind.rawValue, node.id]
            )
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO nodes
                    (id, kind, service, version, region, environment, host, address, pid, startedAt, heartbeatAt, status, ttl, stats)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    node.id, node.kind.rawValue, node.service, node.version, node.region, node.environment, node.host, node.address,
                    Int64(node.pid), node.startedAt.timeIntervalSince1970, node.heartbeatAt.timeIntervalSince1970,
                    node.status.rawValue, node.ttl, Self.encode(stats: node.stats),
                ]
            )
        }
    }

    public func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE nodes SET heartbeatAt = ?, status = ?, stats = ? WHERE id = ?",
                arguments: [at.timeIntervalSince1970, status.rawValue, Self.encode(stats: stats), nodeID]
            )
            return db.changesCount > 0
        }
    }

    public func deregister(nodeID: String) async throws {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM nodes WHERE id = ?", arguments: [nodeID])
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await self.read("nodes") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM nodes ORDER BY service, startedAt").map(Self.node(from:))
        }
    }

    public func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "DELETE FROM nodes WHERE id = ? AND heartbeatAt < ?",
                arguments: [nodeID, before.timeIntervalSince1970]
            )
            return db.changesCount > 0
        }
    }
}
