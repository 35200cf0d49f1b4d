import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Drop folders on a real file system that refuses writes: mounted read-only, and full. The
/// engine says so clearly and leaves the input where it was; once the folder is writable
/// again the same initiator picks the file up by itself.
///
/// Needs to mount a small tmpfs (root with CAP_SYS_ADMIN, as on these machines); where that is
/// refused the suite is skipped with a line saying so, except in CI, where it must run.
@Suite(
    .timeLimit(.minutes(2)),
    .enabled(if: requirement(SmallFileSystem.canMount, test: "DropFolderFaultTests", "mounting a tmpfs (root with CAP_SYS_ADMIN)"), "needs to mount a tmpfs")
)
struct DropFolderFaultTests {
    static let route = """
        name: f
        from:
          - files: { dir: drop, pattern: "*.json" }
        steps:
          - service: uppercase
        """

    @Test func aReadOnlyFolderIsReportedAndItsFilesWaitUntilItIsWritable() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("f.yaml", Self.route)
        let drop = scratch.path + "/drop"
        let disk = try SmallFileSystem(at: drop, kilobytes: 256)
        defer { disk.unmount() }
        try #"{"text":"waiting"}"#.write(toFile: drop + "/a.json", atomically: false, encoding: .utf8)
        try disk.remount(readOnly: true)

        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        #expect(await eventually(within: 20) { sky.stderr.contains("read only") && sky.stderr.contains(drop) }, "stderr: \(sky.stderr.suffix(800))")
        #expect(FileManager.default.fileExists(atPath: drop + "/a.json"), "the input must stay where it was")

        try disk.remount(readOnly: false)
        let done = await eventually(within: 30) { FileManager.default.fileExists(atPath: drop + "/.done/a.json") }
        #expect(done, "not picked up once writable: \(sky.stderr.suffix(800))")
        let answer = try String(contentsOfFile: drop + "/.out/a.json.json", encoding: .utf8)
        #expect(answer.contains("WAITING"))
    }

    @Test func aFullDiskParksNothingWrongAndLosesNothing() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("f.yaml", Self.route)
        let drop = scratch.path + "/drop"
        let disk = try SmallFileSystem(at: drop, kilobytes: 256)
        defer { disk.unmount() }
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        _ = try await sky.waitForWord(after: "HTTP       ")
        #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: drop + "/.processing") })

        // Fill the disk, then drop files whose answers cannot be written.
        let ballast = drop + "/.ballast"
        _ = FileManager.default.createFile(atPath: ballast, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: ballast))
        let block = Data(repeating: 0x20, count: 4096)
        while (try? handle.write(contentsOf: block)) != nil {}
        // Give back two pages: room for two small inputs, none for their answers.
        let size = (try? handle.offset()) ?? 0
        try handle.truncate(atOffset: size >= 8192 ? size - 8192 : 0)
        try? handle.close()
        var dropped: [String] = []
        for index in 0..<2 {
            let name = "f\(index).json"
            if (try? #"{"text":"full \#(index)"}"#.write(toFile: drop + "/.\(name).tmp", atomically: false, encoding: .utf8)) != nil,
               rename(drop + "/.\(name).tmp", drop + "/" + name) == 0 {
                dropped.append(name)
            }
        }
        try #require(!dropped.isEmpty, "could not drop any file on the full disk")

        // The engine says why; no file is marked done without its answer.
        #expect(await eventually(within: 20) { sky.stderr.contains("No space left") || sky.stderr.contains("space") }, "stderr: \(sky.stderr.suffix(800))")
        for name in dropped where FileManager.default.fileExists(atPath: drop + "/.done/" + name) {
            #expect(FileManager.default.fileExists(atPath: drop + "/.out/" + name + ".json"), "\(name) done without an answer")
        }

        // Space again: every file ends done with its answer, or parked with its error.
        try FileManager.default.removeItem(atPath: ballast)
        let settled = await eventually(within: 60) {
            dropped.allSatisfy { name in
                FileManager.default.fileExists(atPath: drop + "/.done/" + name) || FileManager.default.fileExists(atPath: drop + "/.failed/" + name)
            }
        }
        let listing = (try? FileManager.default.subpathsOfDirectory(atPath: drop)) ?? []
        #expect(settled, "files: \(listing)")
        for name in dropped where FileManager.default.fileExists(atPath: drop + "/.done/" + name) {
            #expect(FileManager.default.fileExists(atPath: drop + "/.out/" + name + ".json"))
        }
    }
}

/// A small tmpfs mounted over a folder, to stage a full or read-only disk.
struct SmallFileSystem {
    let path: String

    static let canMount: Bool = {
        let probe = NSTemporaryDirectory() + "sky-mount-probe-\(UUID().uuidString.prefix(6))"
        guard (try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? SmallFileSystem.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe])) == 0 else { return false }
        _ = try? SmallFileSystem.run(["umount", probe])
        return true
    }()

    init(at path: String, kilobytes: Int) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard try Self.run(["mount", "-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", path]) == 0 else { throw E2EError("mount \(path) failed") }
    }

    func remount(readOnly: Bool) throws {
        guard try Self.run(["mount", "-o", "remount,\(readOnly ? "ro" : "rw")", self.path]) == 0 else { throw E2EError("remount \(self.path) failed") }
    }

    func unmount() {
        _ = try? Self.run(["umount", "-l", self.path])
    }

    /// Runs a short system command and answers its exit status (it finishes at once).
    @discardableResult
    static func run(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
