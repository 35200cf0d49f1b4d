import Foundation
public import RegistryKit
import Synchronization

/// ``RouteStore``: pushed routes by name; a changed text bumps the revision.
extension MemoryRegistry {
    /// Every pushed route, by name.
    public func storedRoutes() async throws -> [StoredRoute] {
        self.state.withLock { Array($0.routes.values) }.sorted { $0.name < $1.name }
    }

    /// A changed text bumps the route's revision, an unchanged one keeps it; with `prune`, routes
    /// not pushed are forgotten.
    public func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute] {
        let now = Date()
        self.state.withLock { state in
            for route in routes {
                let old = state.routes[route.name]
                if let old, old.yaml == route.yaml { continue }
                state.routes[route.name] = StoredRoute(name: route.name, yaml: route.yaml, file: route.file, revision: (old?.revision ?? 0) + 1, updatedAt: now)
            }
            if prune {
                let keep = Set(routes.map(\.name))
                state.routes = state.routes.filter { keep.contains($0.key) }
            }
        }
        return try await self.storedRoutes()
    }
}
