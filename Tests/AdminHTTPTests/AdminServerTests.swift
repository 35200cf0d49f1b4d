import Foundation
import Logging
import SkyLib
import SkyTestSupport
import AdminHTTP
import Testing

/// An ``AdminServer`` on a real socket, asked by curl: what every Skynet process serves beside
/// its work, and what a monitoring system or a person relies on when the process is in trouble.
@Suite(.timeLimit(.minutes(1)))
struct AdminServerTests {
    /// Runs `server` until `body` returns, handing it the address the server reported.
    static func serving(
        token: String? = nil, endpoints: AdminEndpoints, _ body: @escaping @Sendable (String) async throws -> Void
    ) async throws {
        let address = Locked<String?>(nil)
        let server = AdminServer(
            host: "127.0.0.1", port: 0, token: token, endpoints: endpoints, eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "admin-test"),
            onServerRunning: { listening in address.withLock { $0 = listening } }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            #expect(await eventually { address.withLock { $0 } != nil })
            let listening = try #require(address.withLock { $0 })
            try await body(listening)
            group.cancelAll()
        }
    }

    /// `/health` answers the document and 200 while healthy, 503 with the same document when
    /// not (a load balancer takes the node out on the status alone).
    @Test func healthFollowsTheProcessState() async throws {
        let healthy = Locked(true)
        let endpoints = AdminEndpoints(counters: Counters(), health: {
            let isHealthy = healthy.withLock { $0 }
            return (isHealthy, ["status": .string(isHealthy ? "ok" : "draining")])
        })
        try await Self.serving(endpoints: endpoints) { (address: String) async throws in
            let up = try await Programs.curl("http://\(address)/health")
            #expect(up.status == 200 && up.headers["content-type"] == "application/json")
            #expect(try JSONParser.parse(Array(up.body.utf8)) == ["status": "ok"])
            healthy.withLock { $0 = false }
            let down = try await Programs.curl("http://\(address)/health")
            #expect(down.status == 503)
            #expect(try JSONParser.parse(Array(down.body.utf8)) == ["status": "draining"])
        }
    }

    /// The same counter is in `/debug/vars` (JSON, with `pid` and uptime) and `/metrics`
    /// (Prometheus text that promtool accepts), along with the live gauges.
    @Test func countersAppearInVarsAndMetrics() async throws {
        let counters = Counters()
        counters.add("route.orders-ok", 3)
        let endpoints = AdminEndpoints(counters: counters, extraVars: { ["inFlight": .int(2)] })
        try await Self.serving(endpoints: endpoints) { (address: String) async throws in
            let vars = try JSONParser.parse(Array(try await Programs.curl("http://\(address)/debug/vars").body.utf8))
            #expect(vars["route.orders-ok"] == .int(3) && vars["inFlight"] == .int(2))
            #expect(vars["pid"] == .int(Int64(ProcessInfo.processInfo.processIdentifier)))
            let metrics = try await Programs.curl("http://\(address)/metrics")
            #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(metrics.body.contains("skynet_var{name=\"route.orders-ok\"} 3.0"))
            #expect(metrics.body.contains("skynet_var{name=\"inFlight\"} 2.0"))
            let promtool = "/usr/bin/promtool"
            if requirement(FileManager.default.isExecutableFile(atPath: promtool), test: "countersAppearInVarsAndMetrics", "promtool (Debian's prometheus package)") {
                let (status, said) = try await Programs.run(promtool, ["check", "metrics"], input: Data(metrics.body.utf8))
                #expect(status == 0, "promtool: \(String(decoding: said, as: UTF8.self))")
            }
        }
    }

    /// A served path asked with the wrong method is 405 with `Allow` (HEAD comes with GET), an
    /// unknown path 404: a client that POSTs to `/health` learns its mistake, not that the
    /// endpoint is missing.
    @Test func wrongMethodIs405WithAllow() async throws {
        try await Self.serving(endpoints: AdminEndpoints(counters: Counters())) { (address: String) async throws in
            let wrong = try await Programs.curl("http://\(address)/health", method: "POST")
            #expect(wrong.status == 405)
            #expect(wrong.headers["allow"] == "GET, HEAD")
            #expect(wrong.body.contains("/health does not take POST"))
            #expect(try await Programs.curl("http://\(address)/nowhere").status == 404)
        }
    }

    /// With a token, every endpoint but `/health` wants it: health checks from a load balancer
    /// carry no secret, counters may tell an outsider too much.
    @Test func theTokenGuardsAllButHealth() async throws {
        try await Self.serving(token: "s3cret", endpoints: AdminEndpoints(counters: Counters())) { (address: String) async throws in
            #expect(try await Programs.curl("http://\(address)/health").status == 200)
            for path in ["/debug/vars", "/metrics", "/debug/progress"] {
                #expect(try await Programs.curl("http://\(address)\(path)").status == 401, "\(path) without the token")
                #expect(try await Programs.curl("http://\(address)\(path)", ["-H", "Authorization: Bearer s3cret"]).status == 200, "\(path) with the token")
            }
        }
    }
}
