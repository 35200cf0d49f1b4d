import Foundation
import RegistryKit
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// Registration over HTTP (`PUT /v1/nodes/ID`), driven by curl: a service registered into
/// another registry joins this one with one call, takes requests, heartbeats by repeating
/// the PUT, expires when it stops, and leaves with a DELETE.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RegistrationTests {
    /// `curl -s -X METHOD URL [-d BODY] [-H …]`: the status and the body.
    static func curl(_ method: String, _ url: String, _ body: String? = nil, token: String? = nil) async throws -> (status: Int, body: String) {
        var arguments = ["/usr/bin/curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}", url]
        if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let output = try await DNSTests.output(arguments)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test func aServiceJoinsWithOneCallHeartbeatsWithTheSameAndLeavesWithADelete() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        // The instance lives in a registry of its own: it joins ours only through the PUT.
        let elsewhere = "sqlite:\(scratch.path)/elsewhere.sqlite"
        let service = try SkyProcess(["service", "uppercase", "--registry", elsewhere], name: "uppercase", directory: scratch.path)
        defer { service.signal(SIGKILL) }
        let address = try await service.waitForWord(after: "ready at ")
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        // No instance yet: the step fails (502).
        #expect(try await HTTP.post("\(base)/routes/shout", #"{"text":"hi"}"#).status == 502)

        let node = "\(base)/v1/nodes/legacy-1"
        let body = #"{"service":"uppercase","address":"\#(address)","ttl":2,"environment":"staging","region":"east"}"#
        let first = try await Self.curl("PUT", node, body)
        #expect(first.status == 201, "\(first)")
        #expect(try JSONParser.parse(first.body)["environment"] == "staging")
        #expect(await eventually { (try? await HTTP.post("\(base)/routes/shout", #"{"text":"hi"}"#).json["text"]) == "HI" })
        // A heartbeat is the same PUT: 200 now, and the node stays while it repeats.
        for _ in 0..<6 {
            #expect(try await Self.curl("PUT", node, body).status == 200)
            try await Task.sleep(for: .milliseconds(500))
        }
        let shown = try await Self.curl("GET", node)
        let shownStatus = try JSONParser.parse(shown.body)["status"]
        #expect(shown.status == 200 && shownStatus == "ready", "\(shown)")
        // sky nodes shows it, with its environment.
        let list = try SkyProcess(["nodes", "--registry", scratch.registry], name: "nodes", directory: scratch.path)
        #expect(try await list.waitForExit() == 0)
        #expect(list.stdoutLines.first?.contains("ENVIRONMENT") == true)
        #expect(list.stdoutLines.contains { $0.hasPrefix("legacy-1") && $0.contains(" staging ") && $0.contains(address) }, "\(list.stdoutLines)")
        // No PUT for longer than the TTL: expired, and out of rotation.
        #expect(await eventually(within: 6) { (try? JSONParser.parse(try await Self.curl("GET", node).body)["status"]) == "expired" })
        // Back with one more PUT, then gone with a DELETE.
        #expect(try await Self.curl("PUT", node, body).status == 200)
        #expect(try await Self.curl("DELETE", node).status == 204)
        #expect(try await Self.curl("GET", node).status == 404)
        #expect(try await Self.curl("DELETE", node).status == 404)
        #expect(await eventually { (try? await HTTP.post("\(base)/routes/shout", #"{"text":"hi"}"#).status) == 502 })
    }

    @Test func badBodiesNameTheFieldAndOthersNodesAreNotTouched() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        let cases: [(String, String)] = [
            (#"{"address":"127.0.0.1:9","ttl":3}"#, "'service' is missing"),
            (#"{"service":"a b","address":"127.0.0.1:9","ttl":3}"#, "'service'"),
            (#"{"service":"x","ttl":3}"#, "'address' is missing"),
            (#"{"service":"x","address":"nohost","ttl":3}"#, "'address' must be HOST:PORT"),
            (#"{"service":"x","address":"0.0.0.0:80","ttl":3}"#, "'address'"),
            (#"{"service":"x","address":"127.0.0.1:9","ttl":"3"}"#, "'ttl' must be a number"),
            (#"{"service":"x","address":"127.0.0.1:9","ttl":0}"#, "'ttl' must be 1 to 86400"),
            (#"{"service":"x","address":"127.0.0.1:9","ttl":3,"version":"1.*"}"#, "'version'"),
            (#"{"service":"x","address":"127.0.0.1:9","ttl":3,"environment":"no_way"}"#, "'environment'"),
            (#"{"service":"x","address":"127.0.0.1:9","ttl":3,"colour":"red"}"#, "'colour' is not known"),
            (#"[1]"#, "JSON object"),
            (#"{"service":"#, "JSON"),
        ]
        for (body, expected) in cases {
            let answer = try await Self.curl("PUT", "\(base)/v1/nodes/n1", body)
            #expect(answer.status == 400, "\(body): \(answer)")
            let message = (try? JSONParser.parse(answer.body))?["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains(expected), "\(body): \(message)")
        }
        #expect(try await Self.curl("PUT", "\(base)/v1/nodes/bad%20id", #"{"service":"x","address":"127.0.0.1:9","ttl":3}"#).status == 400)
        // The router's own record registered itself: not for PUT or DELETE here.
        let registry = try await scratch.openRegistry()
        let own = try #require(try await registry.nodes().first { $0.kind == .router })
        let put = try await Self.curl("PUT", "\(base)/v1/nodes/\(own.id)", #"{"service":"x","address":"127.0.0.1:9","ttl":3}"#)
        #expect(put.status == 409 && put.body.contains("registered itself"), "\(put)")
        #expect(try await Self.curl("DELETE", "\(base)/v1/nodes/\(own.id)").status == 409)
        #expect(try await registry.nodes().contains { $0.id == own.id && $0.service == "router" })
    }

    @Test func theTokenGuardsRegistrationLikeEveryOtherEndpoint() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path,
            environment: ["SKYNET_TOKEN": "s3cret"]
        )
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        let body = #"{"service":"x","address":"127.0.0.1:9","ttl":3}"#
        #expect(try await Self.curl("PUT", "\(base)/v1/nodes/n1", body).status == 401)
        #expect(try await Self.curl("PUT", "\(base)/v1/nodes/n1", body, token: "wrong").status == 401)
        #expect(try await Self.curl("PUT", "\(base)/v1/nodes/n1", body, token: "s3cret").status == 201)
    }
}
