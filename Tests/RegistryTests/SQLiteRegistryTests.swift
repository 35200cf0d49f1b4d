import Foundation
import Testing

import SkyLib
import RouteModel
@testable import RegistrySQLite
@testable import RegistryKit

/// What only the embedded backend has to show (the shared behaviour is in
/// `RegistryConformanceTests`).
struct SQLiteRegistryTests {
    /// Two handles on one file behave like two processes sharing the registry.
    @Test func twoHandlesShareOneFile() async throws {
        let path = NSTemporaryDirectory() + "sky-sqlite-\(UUID().uuidString)/registry.sqlite"
        try await RegistryConformance.concurrentWritersAllLand(SQLiteRegistry(path: path), SQLiteRegistry(path: path))
    }

    /// Processes started together on a new registry file all open it. The first to switch
    /// the file to WAL holds it for a moment and SQLite does not wait for that (the others got
    /// "database is locked" from `PRAGMA journal_mode = WAL`: a `sky service` exited at start
    /// in the end-to-end DNS test). Eight handles opened at once, on twenty fresh files.
    @Test func handlesOpenedTogetherOnANewFileAllOpen() async throws {
        for _ in 0..<20 {
            let path = NSTemporaryDirectory() + "sky-sqlite-\(UUID().uuidString)/registry.sqlite"
            let opened = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask { await Task.detached { (try? SQLiteRegistry(path: path)) != nil }.value }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(opened == 8, "\(path)")
        }
    }

    /// A file made by an older `sky` (its tables made without the migrator, nodes without an
    /// environment) is brought up to date when opened: its node kept, now `production`.
    @Test func aFileFromBeforeTheMigratorIsBroughtUpToDate() async throws {
        let folder = NSTemporaryDirectory() + "sky-sqlite-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/registry.sqlite"
        // Python's sqlite3, as the old schema was: no grdb_migrations, no environment column.
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, service TEXT NOT NULL, version TEXT NOT NULL, region TEXT NOT NULL, host TEXT NOT NULL, address TEXT NOT NULL, pid INTEGER NOT NULL, startedAt REAL NOT NULL, heartbeatAt REAL NOT NULL, status TEXT NOT NULL, ttl REAL NOT NULL, stats TEXT NOT NULL DEFAULT '{}')")
            db.execute("INSERT INTO nodes VALUES ('old-node', 'service', 'upper', '1.0.0', 'local', 'h', '127.0.0.1:1', 1, 0, 0, 'ready', 3, '{}')")
            db.commit()
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, path]
        try python.run()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        let registry = try SQLiteRegistry(path: path)
        let nodes = try await registry.nodes()
        #expect(nodes.map(\.id) == ["old-node"] && nodes.first?.environment == "production")
        // The tables added since are there too.
        try await registry.mergeCounts(nodeID: "n", counts: ["c": 1], at: Date())
        #expect(try await registry.counts().total("c") == 1)
        // Opened again, nothing is applied twice.
        _ = try SQLiteRegistry(path: path)
    }

    @Test func addressesParse() throws {
        #expect(try RegistryAddress("sqlite:/tmp/x.sqlite") == .sqlite(path: "/tmp/x.sqlite"))
        #expect(try RegistryAddress("mongodb://127.0.0.1:27017/sky") == .mongodb(uri: "mongodb://127.0.0.1:27017/sky"))
        #expect(throws: SkyError.self) { try RegistryAddress("redis://x") }
        #expect(throws: SkyError.self) { try RegistryAddress("sqlite:") }
        #expect(try RegistryAddress.resolve(flag: nil, environment: [:]) == .defaultAddress)
        #expect(try RegistryAddress.resolve(flag: nil, environment: ["SKYNET_REGISTRY": "sqlite:a"]) == .sqlite(path: "a"))
        #expect(try RegistryAddress.resolve(flag: "sqlite:b", environment: ["SKYNET_REGISTRY": "sqlite:a"]) == .sqlite(path: "b"))
        #expect(RegistryAddress.mongodb(uri: "mongodb://user:secret@h:1/db").description == "mongodb://***@h:1/db")
    }

    @Test func credentialsStayOffTheCommandLine() throws {
        // On the command line: refused, saying where to put them instead.
        #expect {
            try RegistryAddress.resolve(flag: "mongodb://user:secret@h:1/db", environment: [:])
        } throws: { error in
            (error as? SkyError)?.message.contains("SKYNET_REGISTRY_FILE") == true
        }
        #expect(try RegistryAddress.resolve(flag: "mongodb://h:1/db?authSource=a@b", environment: [:]) == .mongodb(uri: "mongodb://h:1/db?authSource=a@b"))
        // From the environment, or a file.
        let uri = "mongodb://user:secret@h:1/db"
        #expect(try RegistryAddress.resolve(flag: nil, environment: ["SKYNET_REGISTRY": uri]) == .mongodb(uri: uri))
        let file = NSTemporaryDirectory() + "registry-\(UUID().uuidString).uri"
        try (uri + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try RegistryAddress.resolve(flag: nil, environment: ["SKYNET_REGISTRY_FILE": file]) == .mongodb(uri: uri))
    }
}
