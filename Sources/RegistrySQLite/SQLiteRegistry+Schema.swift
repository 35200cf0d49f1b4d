import GRDB

extension SQLiteRegistry {
    /// The registry's schema as GRDB migrations, applied in order when a file is opened and
    /// recorded in the file (`grdb_migrations`), so a file made by an older `sky` is brought up
    /// to date once. Every step is written to be harmless on a file that already has it: files
    /// from before the migrator made their tables with `CREATE TABLE IF NOT EXISTS` and have no
    /// record of any step.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("nodes, leases, routes, spans, commands, events") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS nodes (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    service TEXT NOT NULL,
                    version TEXT NOT NULL,
                    region TEXT NOT NULL,
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
        }
        // Nodes gained an environment (issue 19); a file made before has every node `production`.
        migrator.registerMigration("nodes.environment") { db in
            let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('nodes')")
            if !columns.contains("environment") {
                try db.execute(sql: "ALTER TABLE nodes ADD COLUMN environment TEXT NOT NULL DEFAULT 'production'")
            }
        }
        migrator.registerMigration("counts") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS counts (
                    node TEXT NOT NULL,
                    name TEXT NOT NULL,
                    value INTEGER NOT NULL,
                    updatedAt REAL NOT NULL,
                    PRIMARY KEY (node, name)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("dedupe") { db in
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
        }
        migrator.registerMigration("failed") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS failed (
                    id TEXT PRIMARY KEY NOT NULL,
                    route TEXT NOT NULL,
                    source TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    code TEXT NOT NULL,
                    state TEXT NOT NULL,
                    failedAt REAL NOT NULL,
                    updatedAt REAL NOT NULL,
                    document TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS failed_by_time ON failed (failedAt);
                CREATE INDEX IF NOT EXISTS failed_by_state ON failed (state, route);
                """)
        }
        return migrator
    }
}
