public import Foundation
import GRDB
public import SkyLib
public import RegistryKit

/// The embedded registry: one SQLite file (WAL mode), shared safely by every process on a host.
///
/// GRDB runs its statements on its own queues, so no call blocks an event loop. A busy timeout
/// lets several processes write the same file: SQLite serialises their writes.
public final class SQLiteRegistry: Registry {
    private let pool: DatabasePool
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
            try self.pool.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS nodes (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        service TEXT NOT NULL,
                        version TEXT NOT NULL,
                        region TEXT NOT NULL,
                        environment TEXT NOT NULL DEFAULT 'production',
                        host TEXT NOT NULL,
                        address TEXT NOT NULL,
                        pid INTEGER NOT NULL,
                        startedAt REAL NOT NULL,
                        heartbeatAt REAL NOT NULL,
                        status TEXT NOT NULL,
                        ttl REAL NOT NULL,
                        stats TEXT NOT NULL DEFAULT '{}'
                    );
                    CREATE INDEX IF NOT EXISTS nodes_lookup ON nodes(service, version, region);
                    CREATE INDEX IF NOT EXISTS nodes_heartbeat ON nodes(heartbeatAt);
                    CREATE TABLE IF NOT EXISTS leases (
                        name TEXT PRIMARY KEY NOT NULL,
                        holder TEXT NOT NULL,
                        expiresAt REAL NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS routes (
                        name TEXT PRIMARY KEY NOT NULL,
                        yaml TEXT NOT NULL,
                        file TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        updatedAt REAL NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS spans (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        traceId TEXT NOT NULL,
                        start REAL NOT NULL,
                        span TEXT NOT NULL
                    );
                    CREATE INDEX IF NOT EXISTS spans_trace ON spans(traceId);
                    CREATE TABLE IF NOT EXISTS commands (
                        id TEXT PRIMARY KEY NOT NULL,
                        action TEXT NOT NULL,
                        target TEXT NOT NULL,
                        arguments TEXT NOT NULL,
                        issuedBy TEXT NOT NULL,
                        issuedAt REAL NOT NULL,
                        expiresAt REAL NOT NULL,
                        state TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        result TEXT NOT NULL,
                        updatedAt REAL NOT NULL
                    );
                    CREATE INDEX IF NOT EXISTS commands_pending ON commands(state, target);
                    CREATE TABLE IF NOT EXISTS events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        at REAL NOT NULL,
                        kind TEXT NOT NULL,
                        nodeID TEXT NOT NULL,
                        service TEXT NOT NULL,
                        message TEXT NOT NULL
                    );
                    """)
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS counts (
                        node TEXT NOT NULL,
                        name TEXT NOT NULL,
                        value INTEGER NOT NULL,
                        updatedAt REAL NOT NULL,
                        PRIMARY KEY (node, name)
                    ) WITHOUT ROWID;
                    """)
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS dedupe (
                        route TEXT NOT NULL,
                        key TEXT NOT NULL,
                        state TEXT NOT NULL,
                        owner TEXT NOT NULL,
                        answer TEXT,
                        expiresAt REAL NOT NULL,
                        runningUntil REAL NOT NULL,
                        PRIMARY KEY (route, key)
                    ) WITHOUT ROWID;
                    """)
                // Files made before nodes had an environment: add it, every node `production`.
                let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('nodes')")
                if !columns.contains("environment") {
                    try db.execute(sql: "ALTER TABLE nodes ADD COLUMN environment TEXT NOT NULL DEFAULT 'production'")
                }
            }
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

    public var displayName: String { "sqlite:\(self.path)" }

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

    /// Spans kept; older ones are deleted as new ones arrive.
    static let spansKept = 100_000

    public func recordSpans(_ spans: [Span]) async throws {
        guard !spans.isEmpty else { return }
        try await self.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO spans (traceId, start, span) VALUES (?, ?, ?)")
            for span in spans {
                try statement.execute(arguments: [span.traceID, span.start.timeIntervalSince1970, JSONWriter.string(span.json)])
            }
            try db.execute(sql: "DELETE FROM spans WHERE seq <= (SELECT MAX(seq) FROM spans) - ?", arguments: [Self.spansKept])
        }
    }

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

    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE dedupe SET runningUntil = ? WHERE route = ? AND key = ? AND owner = ? AND state = 'running'",
                arguments: [runningUntil.timeIntervalSince1970, route, key, owner]
            )
            return db.changesCount > 0
        }
    }

    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE dedupe SET state = 'done', answer = ? WHERE route = ? AND key = ? AND owner = ?",
                arguments: [JSONWriter.string(answer), route, key, owner]
            )
        }
    }

    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM dedupe WHERE route = ? AND key = ? AND owner = ? AND state = 'running'", arguments: [route, key, owner])
        }
    }

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

    public func counts() async throws -> GCounter {
        try await self.read("counts") { db in
            var counter = GCounter()
            for row in try Row.fetchAll(db, sql: "SELECT node, name, value FROM counts") {
                counter.merge(name: row["name"], nodeID: row["node"], value: row["value"])
            }
            return counter
        }
    }

    public func latestRouteSpans(limit: Int) async throws -> [Span] {
        try await self.read("spans") { db in
            // Newest rows first, kept to route spans: a bounded walk back from the end.
            try String.fetchAll(db, sql: "SELECT span FROM spans WHERE json_extract(span, '$.kind') = 'route' ORDER BY start DESC, seq DESC LIMIT ?", arguments: [limit])
                .compactMap { text in (try? JSONParser.parse(text)).flatMap(Span.init(json:)) }
        }
    }

    public func spans(traceID: String) async throws -> [Span] {
        try await self.read("spans") { db in
            try String.fetchAll(db, sql: "SELECT span FROM spans WHERE traceId = ? ORDER BY start, seq", arguments: [traceID])
                .compactMap { text in (try? JSONParser.parse(text)).flatMap(Span.init(json:)) }
        }
    }

    public func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        try await self.write { db in
            // One statement, so two processes racing for the lease cannot both win.
            try db.execute(
                sql: """
                    INSERT INTO leases (name, holder, expiresAt) VALUES (?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expiresAt = excluded.expiresAt
                    WHERE leases.holder = excluded.holder OR leases.expiresAt < ?
                    """,
                arguments: [name, holder, now.timeIntervalSince1970 + duration, now.timeIntervalSince1970]
            )
            return db.changesCount > 0
        }
    }

    public func storedRoutes() async throws -> [StoredRoute] {
        try await self.read("routes") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM routes ORDER BY name").map { row in
                StoredRoute(name: row["name"], yaml: row["yaml"], file: row["file"], revision: row["revision"], updatedAt: Date(timeIntervalSince1970: row["updatedAt"]))
            }
        }
    }

    public func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute] {
        let now = Date().timeIntervalSince1970
        try await self.write { db in
            for route in routes {
                let old = try Row.fetchOne(db, sql: "SELECT yaml, revision FROM routes WHERE name = ?", arguments: [route.name])
                if let old, (old["yaml"] as String) == route.yaml { continue }
                let revision = ((old?["revision"] as Int?) ?? 0) + 1
                try db.execute(
                    sql: "INSERT OR REPLACE INTO routes (name, yaml, file, revision, updatedAt) VALUES (?, ?, ?, ?, ?)",
                    arguments: [route.name, route.yaml, route.file, revision, now]
                )
            }
            if prune {
                let keep = Set(routes.map(\.name))
                for name in try String.fetchAll(db, sql: "SELECT name FROM routes") where !keep.contains(name) {
                    try db.execute(sql: "DELETE FROM routes WHERE name = ?", arguments: [name])
                }
            }
        }
        return try await self.storedRoutes()
    }

    /// Commands are kept this long, then pruned.
    static let commandsKeptFor: TimeInterval = 86400

    public func sendCommands(_ commands: [NodeCommand]) async throws {
        guard !commands.isEmpty else { return }
        try await self.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO commands (id, action, target, arguments, issuedBy, issuedAt, expiresAt, state, actor, result, updatedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for command in commands {
                try statement.execute(arguments: [
                    command.id, command.action.rawValue, command.target, JSONWriter.string(.object(command.arguments.mapValues { .string($0) })),
                    command.issuedBy, command.issuedAt.timeIntervalSince1970, command.expiresAt.timeIntervalSince1970,
                    command.state.rawValue, command.actor, command.result, command.updatedAt.timeIntervalSince1970,
                ])
            }
            try db.execute(sql: "DELETE FROM commands WHERE issuedAt < ?", arguments: [Date().timeIntervalSince1970 - Self.commandsKeptFor])
        }
    }

    public func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        guard !targets.isEmpty, !actions.isEmpty else { return [] }
        let targetList = targets.map { _ in "?" }.joined(separator: ",")
        let actionList = actions.map { _ in "?" }.joined(separator: ",")
        let filter = "state = 'pending' AND expiresAt > ? AND target IN (\(targetList)) AND action IN (\(actionList))"
        let values: [(any DatabaseValueConvertible)?] = [now.timeIntervalSince1970] + targets + actions.map(\.rawValue)
        let arguments = StatementArguments(values)
        // Every node asks on every heartbeat and almost always there is nothing: ask with a
        // read, which takes no write lock, before claiming in a write.
        let any = try await self.read("commands") { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM commands WHERE \(filter))", arguments: arguments) ?? false
        }
        guard any else { return [] }
        // One write transaction: SQLite serialises writers, so two claimers cannot both see a
        // command pending.
        return try await self.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM commands WHERE \(filter)", arguments: arguments)
            var claimed: [NodeCommand] = []
            for row in rows {
                try db.execute(
                    sql: "UPDATE commands SET state = 'acknowledged', actor = ?, updatedAt = ? WHERE id = ?",
                    arguments: [actor, now.timeIntervalSince1970, row["id"] as String]
                )
                if var command = Self.command(from: row) {
                    command.state = .acknowledged
                    command.actor = actor
                    command.updatedAt = now
                    claimed.append(command)
                }
            }
            return claimed
        }
    }

    public func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE commands SET state = ?, result = ?, updatedAt = ? WHERE id = ? AND state = ?",
                arguments: [to.rawValue, result, now.timeIntervalSince1970, id, from.rawValue]
            )
            return db.changesCount > 0
        }
    }

    public func commands(ids: [String]) async throws -> [NodeCommand] {
        guard !ids.isEmpty else { return [] }
        return try await self.read("commands") { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM commands WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ","))) ORDER BY issuedAt",
                arguments: StatementArguments(ids.map { $0 as (any DatabaseValueConvertible)? })
            ).compactMap(Self.command(from:))
        }
    }

    private static func command(from row: Row) -> NodeCommand? {
        var arguments: [String: String] = [:]
        if let text: String = row["arguments"], let json = try? JSONParser.parse(text) {
            arguments = (json.objectValue ?? [:]).compactMapValues(\.stringValue)
        }
        guard let action = NodeCommand.Action(rawValue: row["action"]), let state = NodeCommand.State(rawValue: row["state"]) else { return nil }
        let issuedAt = Date(timeIntervalSince1970: row["issuedAt"])
        var command = NodeCommand(
            id: row["id"], action: action, target: row["target"], arguments: arguments, issuedBy: row["issuedBy"], issuedAt: issuedAt,
            state: state, actor: row["actor"], result: row["result"], updatedAt: Date(timeIntervalSince1970: row["updatedAt"])
        )
        command.expiresAt = Date(timeIntervalSince1970: row["expiresAt"])
        return command
    }

    /// Reads in one of the pool's readers; a failure becomes a retryable registry error naming
    /// `what` was being read.
    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.read(body)
        } catch {
            throw SkyError(.registry, "reading \(what) from \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.write(body)
        } catch {
            throw SkyError(.registry, "writing to \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    private static func encode(stats: [String: Int64]) -> String {
        JSONWriter.string(.object(stats.mapValues { .int($0) }))
    }

    private static func node(from row: Row) -> NodeRecord {
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
