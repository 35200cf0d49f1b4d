import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``RouteStore``: pushed routes in table `routes`, one row per name with its revision.
extension SQLiteRegistry {
    /// Every pushed route, by name.
    public func storedRoutes() async throws -> [StoredRoute] {
        try await self.read("routes") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM routes ORDER BY name").map { row in
                StoredRoute(name: row["name"], yaml: row["yaml"], file: row["file"], revision: row["revision"], updatedAt: Date(timeIntervalSince1970: row["updatedAt"]))
            }
        }
    }

    /// In one transaction: a route whose text changed gets the next revision, an unchanged one
    /// keeps its revision (so a push of the same folder does not make every router reload), and
    /// with `prune` the routes not pushed are removed.
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
}
