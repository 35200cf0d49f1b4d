import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// A circuit breaker seen from outside: a router whose route calls a service nobody answers
/// (added by hand at a closed port) opens the circuit, answers 503 `circuit_open` at once,
/// and says so in /debug/vars, /metrics, `sky services` and the dashboard.
@Suite(.timeLimit(.minutes(2)))
struct BreakerTests {
    @Test func anOpenCircuitFailsFastAndShowsEverywhere() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("pay.yaml", "name: pay\nsteps:\n  - service: payments\n    breaker: { failures: 3, coolDown: 60s }\n")
        // Port 9 (discard) on loopback: nothing listens, every call is refused.
        let add = try SkyProcess(["nodes", "add", "--service", "payments", "--address", "127.0.0.1:9", "--registry", scratch.registry], name: "add", directory: scratch.path)
        #expect(try await add.waitForExit() == 0)
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        for _ in 0..<3 { #expect(try await HTTP.post("\(base)/routes/pay", "{}").status == 502) }
        let refused = try await HTTP.post("\(base)/routes/pay", "{}")
        #expect(refused.status == 503 && refused.json["error"]?["code"] == "circuit_open", "\(refused.text)")
        #expect(refused.json["error"]?["message"]?.stringValue?.contains("circuit open for service 'payments'") == true)

        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect(vars["breaker.payments-state"]?.intValue == 2 && vars["breaker.payments-rejected"]?.intValue == 1, "\(vars)")
        #expect(try await HTTP.get("\(base)/metrics").text.contains(#"skynet_var{name="breaker.payments-state"} 2"#))

        // The router's node stats carry it: sky services and the dashboard read them.
        #expect(await eventually(within: 5) {
            let services = try? SkyProcess(["services", "--registry", scratch.registry], name: "services", directory: scratch.path)
            guard let services, (try? await services.waitForExit()) == 0 else { return false }
            return services.stdoutLines.first?.contains("BREAKER") == true
                && services.stdoutLines.contains { $0.hasPrefix("payments") && $0.contains("open on 1/1 routers") }
        })
        let dashboard = try SkyProcess(["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "dashboard", directory: scratch.path)
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        #expect(await eventually(within: 10) {
            let state = try? JSONParser.parse((try? await HTTP.get("\(page)api/state").text) ?? "")
            return state?["breakers"]?.arrayValue?.first?["service"] == "payments" && state?["breakers"]?.arrayValue?.first?["state"] == "open"
        })
        #expect(try await HTTP.get(page).text.contains(#"data-breaker="payments""#))
    }
}
