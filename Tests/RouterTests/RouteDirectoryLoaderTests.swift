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

    /// A refused edit is kept as the file's problem (file, line, the revision still serving) until
    /// a good edit or the file's removal clears it: what `GET /routes`, `sky routes status` and the
    /// dashboard show.
    @Test func aRefusedFileIsAProblemUntilAGoodEditOrItsRemoval() async throws {
        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n")
        try self.write("c.yaml", "name: c\nsteps:\n  - service: one\n")
        await self.loader.reload()
        #expect(self.table.problems.isEmpty)

        try self.write("a.yaml", "name: a\nsteps:\n  - service: one\n    merge: maybe\n")
        try self.write("c.yaml", "name: c\nsteps: [\n")
        await self.loader.reload()
        let problems = self.table.problems
        #expect(problems.map { ($0.error.file as NSString).lastPathComponent } == ["a.yaml", "c.yaml"])
        #expect(problems.first?.error.line == 4 && problems.first?.route == "a" && problems.first?.serving == 1)
        #expect(problems.first?.json["message"]?.stringValue?.hasSuffix("a.yaml:4:12: 'merge' must be true or false") == true)
        #expect(self.table.route(named: "a")?.revision == 1, "the last good revision serves, and says which it is")
        // Read back from JSON as the dashboard and `sky routes status` read it.
        #expect(problems.map(\.json).compactMap(RouteProblem.init(json:)).map(\.error) == problems.map(\.error))

        try self.write("a.yaml", "name: a\nsteps:\n  - service: two\n")
        try FileManager.default.removeItem(atPath: self.folder + "/c.yaml")
        await self.loader.reload()
        #expect(self.table.problems.isEmpty)
        #expect(self.table.route(named: "a")?.revision == 2)
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
