import Foundation
import Logging
import SkyTestSupport
import Testing

@testable import Initiators
@testable import SkyLib

/// The file initiator on a real folder with a stand-in route runner (the end-to-end tests
/// run it inside the real `sky`).
@Suite(.timeLimit(.minutes(1)))
struct FileDropInitiatorTests {
    let folder = NSTemporaryDirectory() + "sky-drop-\(UUID().uuidString.prefix(8))"
    let counters = Counters()
    let calls = Locked<[RequestEnvelope]>([])

    func initiator(format: String = "json", syncs: SyncGroup = SyncGroup()) -> FileDropInitiator {
        let calls = self.calls
        let runner = FakeRunner(behaviour: { request in
            calls.withLock { $0.append(request) }
            return RouteResult(payload: request.payload)
        }, routes: ["r"])
        var configuration = FileDropInitiator.Configuration(route: "r", source: FileSource(dir: self.folder, pattern: "*", concurrency: 2, format: format))
        configuration.scanInterval = .milliseconds(100)
        configuration.syncs = syncs
        return FileDropInitiator(configuration: configuration, runner: runner, counters: self.counters, logger: Logger(label: "test"))
    }

    func drop(_ name: String, _ text: String) throws {
        try text.write(toFile: self.folder + "/.\(name).tmp", atomically: false, encoding: .utf8)
        _ = rename(self.folder + "/.\(name).tmp", self.folder + "/" + name)
    }

    /// A failed move out of `.processing/` is logged once, retried with backoff, and never
    /// makes the file run again.
    @Test func aFailedMoveIsRetriedNotReprocessed() async throws {
        let initiator = self.initiator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done") })
            // Make .done unusable: a plain file where the folder should be.
            try FileManager.default.removeItem(atPath: self.folder + "/.done")
            _ = FileManager.default.createFile(atPath: self.folder + "/.done", contents: Data())
            try self.drop("a.json", #"{"n":1}"#)
            #expect(await eventually(within: 10) { self.counters.value("files.r-move-errors") == 1 })
            #expect(FileManager.default.fileExists(atPath: self.folder + "/.out/a.json.json"))
            #expect(FileManager.default.fileExists(atPath: self.folder + "/.processing/a.json"))
            // The disk is fixed: the move succeeds at last; the route ran once.
            try FileManager.default.removeItem(atPath: self.folder + "/.done")
            try FileManager.default.createDirectory(atPath: self.folder + "/.done", withIntermediateDirectories: false)
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done/a.json") })
            #expect(self.calls.withLock { $0.count } == 1)
            #expect(self.counters.value("files.r-move-errors") == 1)
            group.cancelAll()
        }
    }

    /// An answer that cannot be synced to disk keeps its input in `.processing/`: the sync is
    /// retried with backoff, the input moves only after it succeeds, and the route runs once.
    @Test func anUnsyncedAnswerKeepsItsInputUntilTheSyncSucceeds() async throws {
        let failing = Locked(true)
        let initiator = self.initiator(syncs: SyncGroup(syncing: { folder throws(DropFolderError) in
            if failing.withLock({ $0 }) { throw DropFolderError(path: folder.root, reason: "EIO") }
        }))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done") })
            try self.drop("a.json", #"{"n":1}"#)
            #expect(await eventually(within: 10) { self.counters.value("files.r-sync-errors") == 1 })
            #expect(FileManager.default.fileExists(atPath: self.folder + "/.processing/a.json"))
            #expect(!FileManager.default.fileExists(atPath: self.folder + "/.done/a.json"))
            failing.withLock { $0 = false }
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done/a.json") })
            #expect(self.calls.withLock { $0.count } == 1)
            group.cancelAll()
        }
    }

    @Test func textFilesArePassedAsStringsWithFileFactsInMeta() async throws {
        try FileManager.default.createDirectory(atPath: self.folder, withIntermediateDirectories: true)
        try self.drop("note.txt", "hello\nworld")
        try self.drop(".hidden", "ignored")
        try self.drop("draft.tmp", "ignored")
        let initiator = self.initiator(format: "text")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done/note.txt") })
            let request = try #require(self.calls.withLock { $0.first })
            #expect(request.payload == "hello\nworld")
            #expect(request.meta["source"] == "files" && request.meta["file"] == "note.txt" && request.meta["size"] == "11")
            #expect(self.calls.withLock { $0.count } == 1)
            #expect(FileManager.default.fileExists(atPath: self.folder + "/.hidden") && FileManager.default.fileExists(atPath: self.folder + "/draft.tmp"))
            group.cancelAll()
        }
    }

    /// A file still being written is not taken, even when its writer pauses; it is taken
    /// once closed.
    @Test func aHalfWrittenFileWaitsForItsWriter() async throws {
        let initiator = self.initiator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            #expect(await eventually { FileManager.default.fileExists(atPath: self.folder + "/.done") })
            // One open for the whole write, as a producer writes a file (a separate create
            // and close would itself be a close-write of an empty file).
            let fd = open(self.folder + "/slow.json", O_CREAT | O_WRONLY, 0o644)
            try #require(fd >= 0)
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            try handle.write(contentsOf: Data(#"{"part": "#.utf8))
            // The writer pauses for several scan intervals: the file must stay where it is.
            try await Task.sleep(for: .seconds(2))
            #expect(FileManager.default.fileExists(atPath: self.folder + "/slow.json"))
            #expect(self.calls.withLock { $0.isEmpty })
            try handle.write(contentsOf: Data(#""two"}"#.utf8))
            try handle.close()
            #expect(await eventually { FileManager.default.fileExists(atPath: self.folder + "/.done/slow.json") })
            #expect(self.calls.withLock { $0.map(\.payload) } == [["part": "two"]])
            group.cancelAll()
        }
    }
}

/// Answers made durable in groups: one sync for the callers that arrive together, its
/// outcome for all of them.
@Suite(.timeLimit(.minutes(1)))
struct SyncGroupTests {
    let folder = try! DropFolder(path: NSTemporaryDirectory() + "sky-sync-\(UUID().uuidString.prefix(8))")

    /// Eight workers: the first one's sync is held until the seven others wait, so they share
    /// the second sync; nobody waits for a third.
    @Test func callersWaitingTogetherShareOneSync() async throws {
        let syncs = Locked(0)
        let gate = DispatchSemaphore(value: 0)
        let group = SyncGroup(syncing: { _ in
            let number = syncs.withLock { count -> Int in
                count += 1
                return count
            }
            if number == 1 { gate.wait() }
        })
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.sync(self.folder) }
            #expect(await eventually(within: 10) { syncs.withLock { $0 } == 1 })
            for _ in 0..<7 { tasks.addTask { try await group.sync(self.folder) } }
            #expect(await eventually(within: 10) { group.waiting == 7 })
            gate.signal()
            try await tasks.waitForAll()
        }
        #expect(syncs.withLock { $0 } == 2)
    }

    /// A failed sync fails every caller of its group (their answers may not be on disk), and
    /// the next caller gets a sync of its own.
    @Test func aFailedSyncFailsItsWholeGroup() async throws {
        let failing = Locked(true)
        let group = SyncGroup(syncing: { folder throws(DropFolderError) in
            if failing.withLock({ $0 }) { throw DropFolderError(path: folder.root, reason: "EIO") }
        })
        await #expect(throws: DropFolderError.self) { try await group.sync(self.folder) }
        failing.withLock { $0 = false }
        try await group.sync(self.folder)
    }
}
