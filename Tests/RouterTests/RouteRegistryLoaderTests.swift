import Foundation
import Logging
import SkyTestSupport
import Testing

import RegistryKit
import RegistrySQLite
@testable import Routing
@testable import SkyLib
import RouteModel

/// Routes pushed to a real SQLite registry file, as `sky routes push` stores them, read by the
/// loader a router on `--routes registry` runs.
@Suite(.timeLimit(.minutes(1)))
struct RouteRegistryLoaderTests {
    let registry: SQLiteRegistry
    let table = RouteTable(source: "registry")
    let counters = Counters()
    let loader: RouteRegistryLoader

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-route-store-\(UUID().uuidString)/registry.sqlite")
        self.loader = RouteRegistryLoader(store: self.registry, table: self.table, counters: self.counters, logger: Logger(label: "test"))
    }

    /// Each stored revision is installed with its own number, which every request on it carries
    /// (its trace says so). A stored revision that does not parse (pushed by another version of
    /// `sky`, or written by hand) is refused with its file and line while the last good one
    /// serves, and counted; the next good push clears it; a removed route goes, problem and all.
    @Test func storedRevisionsServeWithTheirNumberAndARefusedOneKeepsTheLastGood() async throws {
        _ = try await self.registry.storeRoutes([StoredRoute(name: "shout", yaml: "name: shout\nsteps:\n  - service: one\n", file: "Routes/shout.yaml")], prune: false)
        await self.loader.reloadNow()
        #expect(self.table.route(named: "shout")?.revision == 1)
        #expect(self.table.problems.isEmpty)

        _ = try await self.registry.storeRoutes(
            [StoredRoute(name: "shout", yaml: "name: shout\nsteps:\n  - service: one\n    retry: { attempts: zero }\n", file: "Routes/shout.yaml")], prune: false
        )
        await self.loader.reloadNow()
        let problem = try #require(self.table.problems.first)
        #expect(problem.error.file == "registry:Routes/shout.yaml" && problem.error.line == 4)
        #expect(problem.route == "shout" && problem.serving == 1)
        #expect(self.table.route(named: "shout")?.revision == 1)
        #expect(self.counters.value("routes-reload-errors") == 1)

        _ = try await self.registry.storeRoutes([StoredRoute(name: "shout", yaml: "name: shout\nsteps:\n  - service: two\n", file: "Routes/shout.yaml")], prune: false)
        await self.loader.reloadNow()
        #expect(self.table.problems.isEmpty)
        #expect(self.table.route(named: "shout")?.revision == 3)
        #expect(self.table.route(named: "shout")?.steps.map(\.service) == ["two"])

        _ = try await self.registry.storeRoutes(
            [StoredRoute(name: "other", yaml: "name: other\nsteps: [\n", file: "Routes/other.yaml")], prune: true
        )
        await self.loader.reloadNow()
        #expect(self.table.route(named: "shout") == nil)
        #expect(self.table.problems.map(\.route) == ["other"] && self.table.problems.first?.serving == nil)
    }
}
