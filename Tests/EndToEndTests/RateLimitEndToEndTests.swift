import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Rate limits through the real `sky run`: HTTP requests over the rate that cannot wait get
/// 429 `rate_limited`; files dropped in a folder on the same route are slowed, every one done.
@Suite(.timeLimit(.minutes(2)))
struct RateLimitEndToEndTests {
    @Test func httpGets429AndDroppedFilesAreSlowedNotDropped() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("slowly.yaml", """
            name: slowly
            timeout: 300ms
            rate: { limit: 10, per: 1s, burst: 1 }
            from:
              - files: { dir: drop/slowly, pattern: "*.json", concurrency: 8 }
            steps:
              - service: uppercase
            """)
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = "http://" + (try await sky.waitForWord(after: "HTTP       ")).replacingOccurrences(of: "http://", with: "")

        // Twelve at once over HTTP: a slot every 100 ms and 300 ms to wait, so some go and the
        // rest are refused at once with 429.
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<12 {
                group.addTask { Int((try? await HTTP.post("\(base)/routes/slowly", #"{"text":"hi"}"#).status) ?? 0) }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.contains(200) && statuses.contains(429) && statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(statuses)")
        let refused = try await HTTP.post("\(base)/routes/slowly", #"{"text":"hi"}"#)
        if refused.status == 429 { #expect(refused.json["error"]?["code"] == "rate_limited") }

        // Twenty files: each waits for its slot (longer than the route's 300 ms), none fails.
        let folder = scratch.path + "/drop/slowly"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for index in 0..<20 {
            try #"{"text":"file \#(index)"}"#.write(toFile: folder + "/.f\(index).tmp", atomically: false, encoding: .utf8)
            #expect(rename(folder + "/.f\(index).tmp", folder + "/f\(index).json") == 0)
        }
        func count(_ sub: String) -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/" + sub)) ?? []).filter { !$0.hasPrefix(".") }.count }
        #expect(await eventually(within: 30) { count(".done") == 20 }, "done \(count(".done")), failed \(count(".failed"))")
        #expect(count(".failed") == 0)
        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect((vars["rate.route.slowly-delayed"]?.intValue ?? 0) >= 10, "\(vars)")
    }
}
