import Foundation
import Logging
import SkyTestSupport
import Testing

@testable import Routing
@testable import SkyLib
import RouteModel

@Suite(.timeLimit(.minutes(1)))
struct RouteDirectoryLoaderTests {
    let folder = NSTemporaryDirectory() + "sky-routes-\(UUID().uuidString)"
    let table = RouteTable()
    let counters = Counters()
    let loader: RouteDirectoryLoader

    init() throws {
        try FileManager.default.createDirectory(atPath: self.folder, withIntermediateDirectories: true)
        self.loader = RouteDirectoryLoader(directory: self.folder, table: self.table, interval: .milliseconds(50), counters: self.counters, threadPool: TestIO.threadPool,
            logger: Logger(label: "test")
        )
    }

    func write(_ name: String, _ text: String) throws {
        // Write then rename, as editors do, so the loader never sees half a file.
        let temporary = self.folder + "/.\(name).tmp"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary, self.folder + "/" + name)
    }

    @Test func loadsEditsRejectsAndRemoves() async throws {
        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n")
        try self.write("b.yml", "name: b\nsteps:\n  - service: two\n")
        try self.write("notes.txt", "not a route")
        var changes = await self.loader.reload()
        #expect(Set(changes.loaded.map(\.route.name)) == ["a", "b"])
        #expect(self.table.summary(named: "a")?.revision == 1)

        // An edit: new version, next revision.
        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n  - service: three\n")
        changes = await self.loader.reload()
        #expect(changes.loaded.map(\.revision) == [2])
        #expect(self.table.route(named: "a")?.steps.map(\.service) == ["one", "three"])

        // A broken edit: rejected with its line, the last good version keeps serving.
        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n    retry: { attempts: zero }\n")
        changes = await self.loader.reload()
        #expect(changes.rejected.map(\.line) == [4])
        #expect(changes.rejected.first?.file.hasSuffix("a.yaml") == true)
        #expect(self.table.summary(named: "a")?.revision == 2)
        #expect(self.table.route(named: "a")?.steps.count == 2)
        #expect(self.counters.value("routes-reload-errors") == 1)

        // Unchanged files are not reloaded.
        changes = await self.loader.reload()
        #expect(changes.loaded.isEmpty && changes.rejected.isEmpty)

        // A deleted file takes its route with it.
        try FileManager.default.removeItem(atPath: self.folder + "/b.yml")
        changes = await self.loader.reload()
        #expect(changes.removed == ["b"])
        #expect(self.table.route(named: "b") == nil)
    }

    @Test func duplicateNamesAreRejectedAndTheFirstKeepsServing() async throws {
        try self.write("1.yaml", "name: same\nsteps:\n  - service: one\n")
        try self.write("2.yaml", "name: same\nsteps:\n  - service: two\n")
        let changes = await self.loader.reload()
        #expect(changes.rejected.count == 1)
        #expect(changes.rejected.first?.reason.contains("duplicate route name 'same'") == true)
        #expect(self.table.route(named: "same")?.steps.map(\.service) == ["one"])
    }

    @Test func renamingARouteInItsFileRemovesTheOldName() async throws {
        try self.write("r.yaml", "name: old\nsteps:\n  - service: one\n")
        await self.loader.reload()
        try self.write("r.yaml", "name: new\nsteps:\n  - service: one\n")
        let changes = await self.loader.reload()
        #expect(changes.removed == ["old"])
        #expect(self.table.route(named: "new") != nil && self.table.route(named: "old") == nil)
    }

    @Test func theRunningLoaderPicksUpAnEditByItself() async throws {
        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n")
        await self.loader.reload()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.loader.run() }
            try self.write("a.yaml", "name: a\nsteps:\n  - service: two\n")
            #expect(await eventually(within: 3) { self.table.summary(named: "a")?.revision == 2 })
            #expect(self.table.route(named: "a")?.steps.map(\.service) == ["two"])
            group.cancelAll()
        }
    }
}
