import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The CSV initiator through the real `sky run`: exact results and rejects, and a crash in the
/// middle of a file that loses no row and writes none twice.
@Suite(.timeLimit(.minutes(3)))
struct CSVTests {
    func drop(_ scratch: Scratch, _ name: String, _ text: String) throws {
        let folder = scratch.path + "/drop/people"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try text.write(toFile: folder + "/.\(name).tmp", atomically: false, encoding: .utf8)
        guard rename(folder + "/.\(name).tmp", folder + "/" + name) == 0 else { throw E2EError("rename failed") }
    }

    func route(concurrency: Int) -> String {
        """
        name: people
        from:
          - csv: { dir: drop/people, concurrency: \(concurrency) }
        steps:
          - service: slow
            timeout: 300ms
          - service: uppercase
        """
    }

    /// The ledger of a finished CSV file: every data line found once among the answers
    /// (`results.jsonl`) and the rejects (`rejects.csv`, whose first field is the line).
    func ledger(_ root: String, _ stem: String, lines: some Sequence<Int>) throws -> Ledger {
        var ledger = Ledger(expecting: lines.map(String.init))
        let results = try String(contentsOfFile: root + "/.out/\(stem).results.jsonl", encoding: .utf8).split(separator: "\n")
        ledger.found(try results.map { try JSONParser.parse(String($0))["line"]?.intValue.map(String.init) ?? "?" }, in: "answers")
        let rejects = try String(contentsOfFile: root + "/.out/\(stem).rejects.csv", encoding: .utf8)
        // Records start where a line begins with a number and a comma (rows are quoted).
        ledger.found(rejects.split(separator: "\n").dropFirst().compactMap { line in
            line.firstIndex(of: ",").flatMap { Int(line[..<$0]) }.map(String.init)
        }, in: "rejects")
        return ledger
    }

    func startSky(_ scratch: Scratch) async throws -> SkyProcess {
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        _ = try await sky.waitForWord(after: "HTTP       ")
        return sky
    }

    @Test func goodMalformedAndFailingRowsGiveExactResultsAndRejects() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("people.yaml", self.route(concurrency: 4))
        let sky = try await self.startSky(scratch)
        try self.drop(scratch, "people.csv", """
            text,sleepMs\r
            hello world,1\r
            "quoted, with comma",1\r
            "multi
            line",1\r
            slow one,1000\r
            bad "quote,1\r
            too,many,fields\r
            last,1\r

            """)
        let root = scratch.path + "/drop/people"
        #expect(await eventually(within: 30) { FileManager.default.fileExists(atPath: root + "/.done/people.csv") })
        let results = try String(contentsOfFile: root + "/.out/people.csv.results.jsonl", encoding: .utf8)
        #expect(results == """
            {"line":2,"result":{"sleepMs":"1","sleptMs":1,"text":"HELLO WORLD"}}
            {"line":3,"result":{"sleepMs":"1","sleptMs":1,"text":"QUOTED, WITH COMMA"}}
            {"line":4,"result":{"sleepMs":"1","sleptMs":1,"text":"MULTI\\nLINE"}}
            {"line":9,"result":{"sleepMs":"1","sleptMs":1,"text":"LAST"}}

            """)
        let rejects = try String(contentsOfFile: root + "/.out/people.csv.rejects.csv", encoding: .utf8).components(separatedBy: "\n")
        #expect(rejects.count == 5 && rejects[0] == "line,error,row" && rejects[4] == "")
        #expect(rejects[1].hasPrefix("6,\"route people: step 1 (slow): timed out") && rejects[1].hasSuffix(",\"slow one,1000\""))
        #expect(rejects[2] == #"7,"malformed row: quote inside an unquoted field (quote the whole field and double inner quotes)","bad ""quote,1""#)
        #expect(rejects[3] == #"8,"row has 3 fields, the header has 2","too,many,fields""#)
        #expect(!FileManager.default.fileExists(atPath: root + "/.processing/people.csv.checkpoint"))
        let ledger = try self.ledger(root, "people.csv", lines: [2, 3, 4, 6, 7, 8, 9])
        #expect(ledger.isExact, "\(ledger)")
        let vars = try await HTTP.get(try await sky.waitForWord(after: "HTTP       ") + "/debug/vars").json
        #expect(vars["csv.people-rows"] == 4 && vars["csv.people-rejects"] == 3)
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    @Test func aCrashMidFileResumesFromTheCheckpointWithNoRowLostOrDoubled() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("people.yaml", self.route(concurrency: 4))
        let rows = 3000
        var text = "text,sleepMs\n"
        for index in 0..<rows { text += "row \(index),8\n" }
        let root = scratch.path + "/drop/people"
        var sky = try await self.startSky(scratch)
        try self.drop(scratch, "big.csv", text)
        #expect(await eventually(within: 60) { FileManager.default.fileExists(atPath: root + "/.processing/big.csv.checkpoint") })
        sky.signal(SIGKILL)
        _ = try await sky.waitForExit()
        #expect(!FileManager.default.fileExists(atPath: root + "/.done/big.csv"), "the crash came before the end")

        sky = try await self.startSky(scratch)
        #expect(await eventually(within: 90) { FileManager.default.fileExists(atPath: root + "/.done/big.csv") })
        #expect(sky.stderr.contains("resuming at line"))
        let lines = try String(contentsOfFile: root + "/.out/big.csv.results.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == rows)
        let numbers = lines.compactMap { try? JSONParser.parse(String($0))["line"]?.intValue }
        #expect(numbers == (0..<rows).map { Int64($0 + 2) })
        #expect(try String(contentsOfFile: root + "/.out/big.csv.rejects.csv", encoding: .utf8) == "line,error,row\n")
        let ledger = try self.ledger(root, "big.csv", lines: 2..<(rows + 2))
        #expect(ledger.isExact, "\(ledger)")
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    /// A route every step of which `sky run` answers in-process takes its rows in batches
    /// (PromptLane): the answers, rejects, retries and counts are each row's own, whatever
    /// batch it ran in.
    @Test func rowsOfAnInProcessRouteRunInBatchesAndEachGetsItsOwnOutcome() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("people.yaml", """
            name: people
            from:
              - csv: { dir: drop/people, concurrency: 4 }
            steps:
              - service: uppercase
              - service: flaky
                retry: { attempts: 3, backoff: 1ms }
              - service: wordcount
                merge: true
            """)
        let sky = try await self.startSky(scratch)
        defer { sky.signal(SIGKILL) }
        // 1,000 rows over several batches; every 100th fails once and is retried, every 250th
        // fails more often than its retries allow, one is malformed and one too wide.
        var text = "text,failTimes\n"
        var expected: [Int: String] = [:]
        var rejected: [Int: String] = [:]
        for index in 0..<1000 {
            let line = index + 2
            switch index {
            case 500:
                text += "bad \"quote,0\n"
                rejected[line] = "malformed row"
            case 600:
                text += "too,many,fields\n"
                rejected[line] = "row has 3 fields, the header has 2"
            case _ where index % 250 == 125:
                text += "row \(index) gives up,5\n"
                rejected[line] = "route people: step 2 (flaky): flaky: deliberate failure 3 of 5 (after 3 attempts)"
            case _ where index % 100 == 7:
                text += "row \(index) once,1\n"
                expected[line] = "ROW \(index) ONCE"
            default:
                text += "row \(index),0\n"
                expected[line] = "ROW \(index)"
            }
        }
        try self.drop(scratch, "many.csv", text)
        let root = scratch.path + "/drop/people"
        #expect(await eventually(within: 60) { FileManager.default.fileExists(atPath: root + "/.done/many.csv") })
        let ledger = try self.ledger(root, "many.csv", lines: 2..<1002)
        #expect(ledger.isExact, "\(ledger)")
        var answered: [Int: String] = [:]
        for line in try String(contentsOfFile: root + "/.out/many.csv.results.jsonl", encoding: .utf8).split(separator: "\n") {
            let answer = try JSONParser.parse(String(line))
            let number = try #require(answer["line"]?.intValue)
            answered[Int(number)] = answer["result"]?["text"]?.stringValue
            let words = Int64((answer["result"]?["text"]?.stringValue ?? "").split(separator: " ").count)
            #expect(answer["result"]?["words"]?.intValue == words, "line \(number): \(answer)")
            let once = (answer["result"]?["text"]?.stringValue ?? "").hasSuffix("ONCE")
            #expect(answer["result"]?["attempts"]?.intValue == (once ? 2 : 1), "line \(number): \(answer)")
        }
        #expect(answered == expected)
        let rejects = try String(contentsOfFile: root + "/.out/many.csv.rejects.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rejects.count == rejected.count)
        for reject in rejects {
            let line = try #require(Int(reject.prefix { $0 != "," }))
            let reason = try #require(rejected[line], "line \(line) was not to be rejected: \(reject)")
            #expect(reject.contains(reason), "line \(line): \(reject)")
        }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let vars = try await HTTP.get(base + "/debug/vars").json
        #expect(vars["csv.people-rows"]?.intValue == Int64(expected.count) && vars["csv.people-rejects"]?.intValue == Int64(rejected.count))
        #expect(vars["route.people-processed"]?.intValue == Int64(expected.count))
        #expect(vars["route.people-errors"]?.intValue == 4)
        // Retries: one per row failing once, two per row giving up.
        #expect(vars["step.flaky-retries"]?.intValue == Int64(10 + 2 * 4))
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }
}
