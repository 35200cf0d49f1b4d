import Foundation
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// `dedupe:` through real processes on one registry: the same order sent to two routers over
/// HTTP, and dropped twice as files, is charged once; the duplicates get the first answer.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DedupeEndToEndTests {
    @Test(arguments: ["sqlite", "mongodb"])
    func anOrderSentTwiceToTwoRoutersAndDroppedTwiceIsChargedOnce(_ backend: String) async throws {
        let scratch = try Scratch(copyingRoutes: false, backend: backend)
        try scratch.writeRoute("orders.yaml", """
            name: orders
            dedupe: { key: order.id, for: 1h }
            from:
              - files: { dir: drop/orders, pattern: "*.json" }
            steps:
              - service: uppercase
            """)
        let service = try SkyProcess(["service", "uppercase", "--registry", scratch.registry], name: "uppercase", directory: scratch.path)
        defer { service.signal(SIGKILL) }
        let address = try await service.waitForWord(after: "ready at ")
        let one = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--services", ""], name: "run", directory: scratch.path)
        defer { one.signal(SIGKILL) }
        let first = try await one.waitForWord(after: "HTTP       ")  // http://HOST:PORT
        let two = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        defer { two.signal(SIGKILL) }
        let second = try await two.waitForWord(after: "router ready at ")

        func charged() async throws -> Int64 { try await HTTP.get("http://\(address)/debug/vars").json["uppercase-processed"]?.intValue ?? -1 }
        let order = #"{"order":{"id":"o-77"},"text":"pay"}"#
        let a = try await HTTP.post("\(first)/routes/orders", order)
        let b = try await HTTP.post("\(second)/routes/orders", order)
        #expect(a.status == 200 && b.status == 200, "\(a.text) \(b.text)")
        #expect(a.text == b.text)
        #expect(a.headers.first(name: "Skynet-Deduplicated") == nil && b.headers.first(name: "Skynet-Deduplicated") == "true")
        #expect(try await charged() == 1)

        // The same order dropped twice (a redelivery): both files done, no second charge; a new
        // order is charged.
        let folder = scratch.path + "/drop/orders"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, body) in [("again1", order), ("again2", order), ("fresh", #"{"order":{"id":"o-78"},"text":"pay"}"#)] {
            try body.write(toFile: folder + "/.\(name).tmp", atomically: false, encoding: .utf8)
            #expect(rename(folder + "/.\(name).tmp", folder + "/\(name).json") == 0)
        }
        func done() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/.done")) ?? []).filter { !$0.hasPrefix(".") }.count }
        #expect(await eventually(within: 20) { done() == 3 })
        #expect(try await charged() == 2)
    }
}
