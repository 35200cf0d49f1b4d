import Foundation
public import RegistryKit
import SkyLib

/// ``RouteStore``: pushed routes in collection `routes`, `_id` the route's name.
extension MongoRegistry {
    /// Every pushed route, by name.
    public func storedRoutes() async throws -> [StoredRoute] {
        try await self.run("reading routes") {
            try await self.find("routes", filter: [], sort: [("_id", 1)]).map { document in
                StoredRoute(
                    name: document["_id"]?.stringValue ?? "",
                    yaml: document["yaml"]?.stringValue ?? "",
                    file: document["file"]?.stringValue ?? "",
                    revision: Int(document["revision"]?.intValue ?? 0),
                    updatedAt: Date(timeIntervalSince1970: document["updatedAt"]?.doubleValue ?? 0)
                )
            }
        }
    }

    /// A route whose text changed is written with the next revision, an unchanged one is left as it
    /// is; with `prune`, routes not pushed are deleted. Per route, not one transaction (see
    /// ``register(_:)``): a router reading meanwhile sees some routes new and some old for one
    /// poll.
    public func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute] {
        let existing = Dictionary(try await self.storedRoutes().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let now = Date().timeIntervalSince1970
        try await self.run("storing routes") {
            for route in routes where existing[route.name]?.yaml != route.yaml {
                _ = try await self.pool.command([
                    ("update", "routes"),
                    ("updates", .array([.document([
                        ("q", .document([("_id", .json(.string(route.name)))])),
                        ("u", .document([("$set", .document([
                            ("yaml", .json(.string(route.yaml))),
                            ("file", .json(.string(route.file))),
                            ("revision", .json(.int(Int64((existing[route.name]?.revision ?? 0) + 1)))),
                            ("updatedAt", .json(.double(now))),
                        ]))])),
                        ("upsert", true),
                    ])])),
                ])
            }
            if prune {
                let keep = Set(routes.map(\.name))
                for name in existing.keys where !keep.contains(name) {
                    _ = try await self.delete("routes", [("_id", .json(.string(name)))])
                }
            }
        }
        return try await self.storedRoutes()
    }
}
