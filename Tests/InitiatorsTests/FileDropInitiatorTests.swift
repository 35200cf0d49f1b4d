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

    func initiator(format: String = "json") -> FileDropInitiator {
        let calls = self.calls
        let runner = FakeRunner(behaviour: { request in
            calls.withLock { $0.append(request) }
            return RouteResult(payload: request.payload)
        }, routes: ["r"])
        var configuration = FileDropInitiator.Configuration(route: "r", source: FileSource(dir: self.folder, pattern: "*", concurrency: 2, format: format))
        configuration.scanInterval = .milliseconds(100)
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
