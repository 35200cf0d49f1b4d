import Foundation
import GRDB
import SkyLib
public import RegistryKit

/// The embedded registry: one SQLite file (WAL mode), shared safely by every process on a host.
///
/// GRDB runs its statements on its own queues, so no call blocks an event loop. A busy timeout
/// lets several processes write the same file: SQLite serialises their writes. The schema is
/// GRDB migrations (``migrator``); each role is implemented in its own file
/// (`SQLiteRegistry+NodeDirectory.swift` …), over its own tables.
public final class SQLiteRegistry: Registry {
    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the registry file at `path`, and its folder.
    /// - Throws: ``SkyError`` with code `.registry` when the file cannot be opened.
    public init(path: String) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        do {
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.label = "skynet.registry"
            self.pool = try Self.openPool(path: path, configuration: configuration)
            try Self.migrate(self.pool)
        } catch {
            throw SkyError(.registry, "cannot open SQLite registry at \(path): \(error)")
        }
    }

    /// Opens the pool, waiting up to 10 s for another opener of a new file. The first
    /// connection to switch a new file to WAL holds it exclusively for a moment, and SQLite
    /// answers the others `SQLITE_BUSY` from `PRAGMA journal_mode = WAL` without calling the
    /// busy handler: processes started together on a new registry failed at start.
    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        let deadline = ContinuousClock.now + .seconds(10)
        var pause = Duration.milliseconds(5)
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now + pause < deadline {
                // Blocking, as the open and its busy timeout already are: a registry is opened
                // once, at start, before anything is served.
                Thread.sleep(forTimeInterval: pause.seconds)
                pause = min(pause * 2, .milliseconds(200))
            }
        }
    }

    /// Brings the file's schema up to date. Processes opening a new file together may both
    /// apply a step (each is harmless twice); the one that records it second collides on
    /// `grdb_migrations` and looks again, finding it applied.
    private static func migrate(_ pool: DatabasePool) throws {
        var attempt = 1
        while true {
            do {
                try Self.migrator.migrate(pool)
                return
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT && attempt < 10 {
                attempt += 1
            }
        }
    }

    public var displayName: String { "sqlite:\(self.path)" }

    /// Reads in one of the pool's readers; a failure becomes a retryable registry error naming
    /// `what` was being read.
    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.read(body)
        } catch {
            throw SkyError(.registry, "reading \(what) from \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    /// Writes in the pool's one writer (SQLite's single writer: every write transaction here is
    /// serialised with every other process's); a failure becomes a retryable registry error.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.write(body)
        } catch {
            throw SkyError(.registry, "writing to \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    /// Stats as a JSON object: they are only ever read whole, with their node.
    static func encode(stats: [String: Int64]) -> String {
        JSONWriter.string(.object(stats.mapValues { .int($0) }))
    }

    /// A node record from its row; an unknown kind or status (from a newer `sky`) reads as a
    /// service, starting.
    static func node(from row: Row) -> NodeRecord {
        var stats: [String: Int64] = [:]
        if let text: String = row["stats"], let json = try? JSONParser.parse(text), case .object(let fields) = json {
            for (key, value) in fields { stats[key] = value.intValue }
        }
        return NodeRecord(
            id: row["id"],
            kind: NodeKind(rawValue: row["kind"]) ?? .service,
            service: row["service"],
            version: row["version"],
            region: row["region"],
            environment: row["environment"] ?? NodeRecord.defaultEnvironment,
            host: row["host"],
            address: row["address"],
            pid: Int32(truncatingIfNeeded: row["pid"] as Int64),
            startedAt: Date(timeIntervalSince1970: row["startedAt"]),
            heartbeatAt: Date(timeIntervalSince1970: row["heartbeatAt"]),
            status: NodeStatus(rawValue: row["status"]) ?? .starting,
            ttl: row["ttl"],
            stats: stats
        )
    }
}

extension SQLiteRegistry {
    /// Holds the write lock of the registry file at `path` for `length`, as a stalled disk
    /// would: every writer (heartbeats, registrations, the reaper) waits on it. `sky drill`'s
    /// `suspend:registry` for an SQLite registry.
    ///
    /// One database access holds the transaction throughout (GRDB allows no transaction across
    /// accesses), on a thread of its own, since it blocks for the whole length.
    public static func holdWriteLock(path: String, for length: Duration) async throws {
        let failure: (any Error)? = await withCheckedContinuation { continuation in
            Thread {
                do {
                    // Waits its turn behind a writer at that moment (a heartbeat), as a stall would.
                    var configuration = Configuration()
                    configuration.busyMode = .timeout(10)
                    let queue = try DatabaseQueue(path: path, configuration: configuration)
                    try queue.inDatabase { db in
                        try db.execute(sql: "BEGIN IMMEDIATE")
                        let (seconds, attoseconds) = length.components
                        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
                        try db.execute(sql: "ROLLBACK")
                    }
                    try queue.close()
                    continuation.resume(returning: nil)
                } catch {
                    continuation.resume(returning: error)
                }
            }.start()
        }
        if let failure { throw failure }
    }
}
