import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The file initiator through the real `sky run`: dropped files end up done or parked, never
/// lost, across crashes.
@Suite(.timeLimit(.minutes(4)))
struct FileDropTests {
    static let route = """
        name: shout
        from:
          - files: { dir: drop/in, pattern: "*.json", concurrency: 8 }
        steps:
          - service: uppercase
        """

    func names(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }
    }

    func drop(_ scratch: Scratch, _ name: String, _ text: String) throws {
        let folder = scratch.path + "/drop/in"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Written under a temporary name and renamed in, as well-behaved producers do.
        try text.write(toFile: folder + "/.\(name).tmp", atomically: false, encoding: .utf8)
        guard rename(folder + "/.\(name).tmp", folder + "/" + name) == 0 else { throw E2EError("rename failed") }
    }

    /// The ledger of a drop folder: each input name once among the answers (`.out/NAME.json`)
    /// and the parked inputs (`.failed/NAME`).
    func ledger(_ root: String, expecting names: [String]) -> Ledger {
        var ledger = Ledger(expecting: names)
        ledger.found(self.names(root + "/.out").filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }, in: "answers")
        ledger.found(self.names(root + "/.failed").filter { !$0.hasSuffix(".error.json") }, in: "parked")
        return ledger
    }

    func startSky(_ scratch: Scratch) async throws -> SkyProcess {
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        _ = try await sky.waitForWord(after: "HTTP       ")
        return sky
    }

    @Test func tenThousandDroppedFilesAreAllDoneOrParked() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", Self.route)
        let sky = try await self.startSky(scratch)
        let total = 10_000
        let bad = Set(stride(from: 7, to: total, by: 500))
        for index in 0..<total {
            if index % 500 == 0 { await Task.yield() }
            try self.drop(scratch, "doc\(index).json", bad.contains(index) ? "{not json" : #"{"text":"file \#(index)"}"#)
        }
        let root = scratch.path + "/drop/in"
        #expect(await eventually(within: 180) { self.names(root + "/.done").count + self.names(root + "/.failed").count == total + bad.count })
        let out = Set(self.names(root + "/.out"))
        #expect(out.count == total - bad.count)
        #expect(out == Set((0..<total).filter { !bad.contains($0) }.map { "doc\($0).json.json" }))
        #expect(Set(self.names(root + "/.failed")) == Set(bad.flatMap { ["doc\($0).json", "doc\($0).json.error.json"] }))
        #expect(self.names(root).isEmpty && self.names(root + "/.processing").isEmpty)
        let ledger = self.ledger(root, expecting: (0..<total).map { "doc\($0).json" })
        #expect(ledger.isExact && ledger.count(in: "parked") == bad.count, "\(ledger)")
        let sample = try String(contentsOfFile: root + "/.out/doc42.json.json", encoding: .utf8)
        #expect(sample == #"{"text":"FILE 42"}"#)
        let error = try JSONParser.parse(String(contentsOfFile: root + "/.failed/doc7.json.error.json", encoding: .utf8))
        #expect(error["route"] == "shout" && error["code"] == "bad_request" && error["reason"]?.stringValue?.contains("not valid JSON") == true)
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    @Test func aCrashLosesNothingAndSameNamesNeverClash() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", """
            name: shout
            from:
              - files: { dir: drop/in, pattern: "*.json", concurrency: 4 }
            steps:
              - service: slow
              - service: uppercase
            """)
        let root = scratch.path + "/drop/in"
        // A file left in .processing/ by an earlier crash, and files that arrived while down.
        try FileManager.default.createDirectory(atPath: root + "/.processing", withIntermediateDirectories: true)
        try #"{"text":"left over","sleepMs":1}"#.write(toFile: root + "/.processing/leftover.json", atomically: true, encoding: .utf8)
        for index in 0..<200 { try self.drop(scratch, "a\(index).json", #"{"text":"a \#(index)","sleepMs":60}"#) }
        var sky = try await self.startSky(scratch)
        #expect(await eventually(within: 30) { self.names(root + "/.done").count >= 20 })
        sky.signal(SIGKILL)
        _ = try await sky.waitForExit()
        #expect(self.names(root + "/.done").count < 201, "the crash came before the end")

        sky = try await self.startSky(scratch)
        #expect(await eventually(within: 60) { self.names(root + "/.done").count == 201 })
        #expect(Set(self.names(root + "/.out")) == Set((0..<200).map { "a\($0).json.json" } + ["leftover.json.json"]))
        #expect(self.names(root + "/.processing").isEmpty && self.names(root + "/.failed").isEmpty)
        let ledger = self.ledger(root, expecting: (0..<200).map { "a\($0).json" } + ["leftover.json"])
        #expect(ledger.isExact, "\(ledger)")

        // A later file with a used name is processed as new, under a name that does not clash.
        try self.drop(scratch, "a1.json", #"{"text":"second a1","sleepMs":1}"#)
        #expect(await eventually(within: 20) { self.names(root + "/.done").count == 202 })
        let second = try #require(self.names(root + "/.done").first { $0.hasPrefix("a1~") })
        #expect(try String(contentsOfFile: root + "/.out/\(second).json", encoding: .utf8).contains("SECOND A1"))

        // A symlink out of the folder is refused, and parked with why.
        try "secret".write(toFile: scratch.path + "/outside.json", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/link.json", withDestinationPath: scratch.path + "/outside.json")
        #expect(await eventually(within: 20) { self.names(root + "/.failed").contains("link.json.error.json") })
        let refusal = try JSONParser.parse(String(contentsOfFile: root + "/.failed/link.json.error.json", encoding: .utf8))
        #expect(refusal["code"] == "refused")
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }
}
