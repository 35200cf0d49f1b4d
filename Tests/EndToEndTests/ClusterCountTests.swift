import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Cluster-wide counts (`sky stats`, the dashboard's totals): every router writes its own
/// count into the registry's G-Counter, so a router stopped mid-stream keeps its part and the
/// cluster's total is the number of requests answered.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterCountTests {
    @Test(arguments: ["sqlite", "mongodb"])
    func theTotalEqualsTheRequestsAnsweredWhenARouterIsStoppedMidStream(_ backend: String) async throws {
        let scratch = try Scratch(copyingRoutes: false, backend: backend)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        let service = try SkyProcess(["service", "uppercase", "--registry", scratch.registry], name: "uppercase", directory: scratch.path)
        defer { service.signal(SIGKILL) }
        _ = try await service.waitForWord(after: "ready at ")
        var routers: [SkyProcess] = []
        var bases: [String] = []
        for index in 0..<2 {
            let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router\(index)", directory: scratch.path)
            routers.append(router)
            bases.append(try await router.waitForWord(after: "router ready at "))
        }
        let (first, second) = (routers[0], routers[1])
        defer { for router in [first, second] { router.signal(SIGKILL) } }
        #expect(await eventually { (try? await HTTP.post("\(bases[0])/routes/shout", #"{"text":"a"}"#).status) == 200 })
        #expect(await eventually { (try? await HTTP.post("\(bases[1])/routes/shout", #"{"text":"a"}"#).status) == 200 })
        let warmUp: Int64 = 2

        // Two clients per router, without pause, until told to stop; router 0 is stopped
        // (SIGTERM, as `kill` sends) while they run.
        let stop = Locked(false)
        let answered = await withTaskGroup(of: Int64.self) { group in
            for client in 0..<4 {
                let base = bases[client % 2]
                group.addTask {
                    var ok: Int64 = 0
                    while !stop.withLock({ $0 }) {
                        if (try? await HTTP.post("\(base)/routes/shout", #"{"text":"hi"}"#, timeout: 5).status) == 200 { ok += 1 }
                    }
                    return ok
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(1.5))
                first.signal(SIGTERM)
                _ = try? await first.waitForExit()
                try? await Task.sleep(for: .seconds(1))
                stop.withLock { $0 = true }
                return 0
            }
            return await group.reduce(0, +)
        }
        #expect(first.process.terminationStatus == 0)
        #expect(answered > 20, "too few requests to say anything: \(answered)")

        // Router 1 writes every second: the total settles at the requests answered.
        var last: JSONValue = .null
        let settled = await eventually(within: 10) {
            let stats = try? SkyProcess(["stats", "--json", "--registry", scratch.registry], name: "stats", directory: scratch.path)
            guard let stats, (try? await stats.waitForExit()) == 0, let line = stats.stdoutLines.last, let json = try? JSONParser.parse(line) else { return false }
            last = json
            return json["routes"]?["shout"]?["ok"]?.intValue == answered + warmUp
        }
        #expect(settled, "answered \(answered + warmUp), sky stats says \(last)")
        #expect(last["routes"]?["shout"]?["nodes"]?.intValue == 2, "\(last)")
        #expect(last["failed"]?.intValue == 0, "\(last)")

        // The table, and the dashboard's totals (its API and page).
        let table = try SkyProcess(["stats", "--route", "shout", "--registry", scratch.registry], name: "stats-table", directory: scratch.path)
        #expect(try await table.waitForExit() == 0)
        #expect(table.stdoutLines.first?.hasPrefix("ROUTE") == true && table.stdoutLines.contains { $0.hasPrefix("shout") && $0.contains(" \(answered + warmUp) ") })
        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        #expect(await eventually(within: 10) {
            let state = try? JSONParser.parse((try? await HTTP.get("\(page)api/state").text) ?? "")
            return state?["totals"]?.arrayValue?.first?["ok"]?.intValue == answered + warmUp
        })
        #expect(try await HTTP.get(page).text.contains("data-total-route=\"shout\""))

        // Router 1 killed outright, well over a second after its last request: its count,
        // already written, stays in the total.
        second.signal(SIGKILL)
        _ = try await second.waitForExit()
        let after = try SkyProcess(["stats", "--json", "--registry", scratch.registry], name: "stats-after", directory: scratch.path)
        #expect(try await after.waitForExit() == 0)
        let total = try JSONParser.parse(after.stdoutLines.last ?? "")["routes"]?["shout"]?["ok"]?.intValue
        #expect(total == answered + warmUp)
    }
}
