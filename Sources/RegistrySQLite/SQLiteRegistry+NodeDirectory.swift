public import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``NodeDirectory``: node records in table `nodes`: one row per node, its stats as JSON. Registering deletes other
/// records of the same kind at the same address first (a restarted process is a new node).
extension SQLiteRegistry {
    /// Writes the record in one write transaction: first the stale records of another process that
    /// had this address and kind (a restarted process is a new node, and a router must not pick the
    /// dead one meanwhile), then the record itself, replacing any with its id. Stats are stored as
    /// a JSON object, read back whole: they are only ever read with their node.
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

    /// One UPDATE by primary key: a heartbeat is the registry's most frequent write (every node,
    /// every second), so it touches one row and no index but the key. The row count it changed says
    /// whether the record still exists (0: it was reaped, and the caller registers again).
    public func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE nodes SET heartbeatAt = ?, status = ?, stats = ? WHERE id = ?",
                arguments: [at.timeIntervalSince1970, status.rawValue, Self.encode(stats: stats), nodeID]
            )
            return db.changesCount > 0
        }
    }

    /// Removes the row; removing a node that is not there is not an error (a node deregisters once
    /// at shutdown, and may have been reaped already).
    public func deregister(nodeID: String) async throws {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM nodes WHERE id = ?", arguments: [nodeID])
        }
    }

    /// Every row, by service and start time: the order `sky nodes` lists them in and the cache
    /// keeps them in. Read in one of the pool's readers, which WAL lets run beside a writer, so
    /// routers refreshing their caches never wait for a heartbeat.
    public func nodes() async throws -> [NodeRecord] {
        try await self.read("nodes") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM nodes ORDER BY service, startedAt").map(Self.node(from:))
        }
    }

    /// Deletes the row only if its heartbeat is still older than `before`, in the same statement: a
    /// node whose heartbeat landed between the reaper's read and this write survives, with no lock
    /// held across the two.
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
