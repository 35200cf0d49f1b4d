import Foundation
import Logging
import SkyTestSupport
import Testing

@testable import Initiators
@testable import SkyLib
import RouteModel

/// The file initiator on a real folder with a stand-in route runner (the end-to-end tests
/// run it inside the real `sky`).
@Suite(.timeLimit(.minutes(1)))
struct FileDropInitiatorTests {
    let folder = NSTemporaryDirectory() + "sky-drop-\(UUID().uuidString.prefix(8))"
    let counters = Counters()
    let calls = Locked<[RequestEnvelope]>([])

    func initiator(format: String = "json", sync: (@Sendable (DropFolder) throws(DropFolderError) -> Void)? = nil) -> FileDropInitiator {
        let calls = self.calls
        let runner = FakeRunner(behaviour: { request in
            calls.withLock { $0.append(request) }
            return RouteResult(payload: request.payload)
        }, routes: ["r"])
        var configuration = FileDropInitiator.Configuration(route: "r", source: FileSource(dir: self.folder, pattern: "*", concurrency: 2, format: format))
        configuration.scanInterval = .milliseconds(100)
        if let sync { configuration.sync = sync }
        return FileDropInitiator(configuration: configuration, runner: runner, counters: self.counters, threadPool: TestIO.threadPool, logger: Logger(label: "test"))
    }

    func drop(_ name: String, _ text: String) throws {
        try text.write(toFile: self.folder + "/.\(name).tmp", atomically: false, encoding: .utf8)
        _ = rename(self.folder + "/.\(name).tmp", self.folder + "/" + name)
    }

    /// The file limit README.md and SECURITY.md state (16 MiB) is the default and holds at its
    /// value: a file of exactly 16 MiB runs its route, one byte more is parked with the reason,
    /// and the file after it runs.
    @Test func aFileOfExactlyTheStatedSixteenMebibytesRunsAndOneByteMoreIsParked() async throws {
        #expect(FileDropInitiator.Configuration(route: "r", source: FileSource(dir: "d")).maxFileBytes == 16 << 20)
        let initiator = self.initiator(format: "text")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: self.folder + "/.done") })
            try self.drop("exact.txt", String(repeating: "x", count: 16 << 20))
            try self.drop("over.txt", String(repeating: "y", count: (16 << 20) + 1))
            try self.drop("after.txt", "after")
            #expect(await eventually(within: 30) {
                ["exact.txt", "after.txt"].allSatisfy { FileManager.default.fileExists(atPath: self.folder + "/.done/" + $0) }
                    && FileManager.default.fileExists(atPath: self.folder + "/.failed/over.txt.error.json")
            })
            group.cancelAll()
        }
        #expect(self.calls.withLock { $0.map { $0.meta["file"] ?? "" } }.sorted() == ["after.txt", "exact.txt"])
        let error = try String(contentsOfFile: self.folder + "/.failed/over.txt.error.json", encoding: .utf8)
        #expect(error.contains("over the limit of \(16 << 20) bytes"), "\(error)")
        #expect(FileManager.default.fileExists(atPath: self.folder + "/.failed/over.txt"))
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
        let initiator = self.initiator(sync: { folder throws(DropFolderError) in
            if failing.withLock({ $0 }) { throw DropFolderError(path: folder.root, reason: "EIO") }
        })
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

    /// A slow disk does not hold the workers: while the first sync is held, every other file
    /// still runs its route and writes its answer; their inputs wait in `.processing/` and
    /// move together after one more sync.
    @Test func workersGoOnWhileASyncIsHeld() async throws {
        let syncs = Locked(0)
        let gate = DispatchSemaphore(value: 0)
        let initiator = self.initiator(sync: { _ in
            let number = syncs.withLock { count -> Int in
                count += 1
                return count
            }
            if number == 1 { gate.wait() }
        })
        try FileManager.default.createDirectory(atPath: self.folder, withIntermediateDirectories: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            try self.drop("first.json", #"{"n":0}"#)
            #expect(await eventually(within: 10) { syncs.withLock { $0 } == 1 })
            for index in 1...10 { try self.drop("f\(index).json", #"{"n":\#(index)}"#) }
            // Two workers, one sync held: the routes of all eleven files still run.
            #expect(await eventually(within: 10) { self.calls.withLock { $0.count } == 11 })
            // Every worker is back for more: each handed its answer over and did not wait.
            #expect(await eventually(within: 10) { self.counters.value("files.r-inflight") == 0 })
            #expect((try? FileManager.default.contentsOfDirectory(atPath: self.folder + "/.out"))?.count == 11)
            #expect(FileManager.default.fileExists(atPath: self.folder + "/.processing/f10.json"))
            #expect(!FileManager.default.fileExists(atPath: self.folder + "/.done/f10.json"))
            #expect(self.counters.value("files.r-done") == 0)
            gate.signal()
            #expect(await eventually(within: 10) { self.counters.value("files.r-done") == 11 })
            for index in 1...10 { #expect(FileManager.default.fileExists(atPath: self.folder + "/.done/f\(index).json")) }
            // The ten written during the held sync shared the next one.
            #expect(syncs.withLock { $0 } == 2)
            group.cancelAll()
        }
    }
}

extension FileDropInitiatorTests {
    /// The window the README states: with the disk held, at most 1,024 answers wait for it;
    /// then both workers stop, each with the answer it could not hand over.
    @Test func atMostTheWindowOfAnswersWaitsForTheDisk() async throws {
        let gate = DispatchSemaphore(value: 0)
        let initiator = self.initiator(sync: { _ in gate.wait() })
        #expect(initiator.configuration.commitWindow == 1024)
        try FileManager.default.createDirectory(atPath: self.folder, withIntermediateDirectories: true)
        for index in 0..<1100 { try self.drop("f\(index).json", #"{"n":\#(index)}"#) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await initiator.run() }
            // 1,024 handed over (the first in the held sync), one more run by each of the two
            // workers, which then wait for room.
            #expect(await eventually(within: 30) { self.calls.withLock { $0.count } == 1026 })
            try await Task.sleep(for: .milliseconds(300))  // and no further
            #expect(self.calls.withLock { $0.count } == 1026)
            #expect(self.counters.value("files.r-done") == 0)
            for _ in 0..<1100 { gate.signal() }
            #expect(await eventually(within: 30) { self.counters.value("files.r-done") == 1100 })
            group.cancelAll()
        }
    }
}

/// Work handed over in groups: workers do not wait for the committer, a group holds
/// everything handed over since the last, and the window bounds what is outstanding.
@Suite(.timeLimit(.minutes(1)))
struct CommitQueueTests {
    /// While the committer holds a group, handed-over items return at once and make up the
    /// next group together.
    @Test func itemsHandedOverDuringACommitFormTheNextGroup() async throws {
        let queue = CommitQueue<Int>(limit: 100)
        await queue.submit(0)
        #expect(await queue.nextGroup() == [0])
        for item in 1...7 { await queue.submit(item) }  // none of these waits: room for 100
        #expect(queue.outstanding == 8)
        queue.committed(1)
        #expect(await queue.nextGroup() == Array(1...7))
        queue.committed(7)
        queue.finish()
        #expect(await queue.nextGroup() == nil)
        #expect(queue.outstanding == 0)
    }

    /// A worker past the window waits until the committer frees room.
    @Test func aWorkerPastTheWindowWaitsForRoom() async throws {
        let queue = CommitQueue<Int>(limit: 2)
        await queue.submit(1)
        await queue.submit(2)
        let third = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                await queue.submit(3)
                third.withLock { $0 = true }
            }
            let group = await queue.nextGroup()
            #expect(group == [1, 2])
            // The third has no room until the group is committed.
            try await Task.sleep(for: .milliseconds(200))
            #expect(!third.withLock { $0 })
            queue.committed(2)
            #expect(await eventually(within: 10) { third.withLock { $0 } })
            #expect(await queue.nextGroup() == [3])
            try await tasks.waitForAll()
        }
    }

    /// Items handed over before `finish` are still given out; then `nil`.
    @Test func finishingDrainsWhatIsLeft() async {
        let queue = CommitQueue<String>(limit: 10)
        await queue.submit("a")
        await queue.submit("b")
        queue.finish()
        #expect(queue.isFinished)
        #expect(await queue.nextGroup() == ["a", "b"])
        #expect(await queue.nextGroup() == nil)
    }
}
