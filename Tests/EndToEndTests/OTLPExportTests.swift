import Foundation
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// OTLP/HTTP export from two real processes (`sky router` and `sky service uppercase`) to a
/// receiver that decodes every batch with OpenTelemetry's official protobuf definitions: the
/// spans link parent to child across the processes; with the collector gone, requests are
/// still answered and the spans are dropped and counted.
@Suite(.timeLimit(.minutes(3)))
struct OTLPExportTests {
    @Test func spansFromTwoProcessesReachTheCollectorLinkedAndADeadCollectorCostsNothing() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        let received = scratch.path + "/received.jsonl"
        let receiver = try await TraceContextTests.helper("otlp_receiver.py", [received], in: scratch)
        defer { receiver.process.signal(SIGKILL) }
        let collector = "http://127.0.0.1:\(receiver.port)"
        // The service finds the collector through the standard variable, the router through --otlp.
        let service = try SkyProcess(
            ["service", "uppercase", "--registry", scratch.registry, "--ttl", "2", "--heartbeat", "0.3"], name: "uppercase", directory: scratch.path,
            environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": collector]
        )
        defer { service.signal(SIGKILL) }
        let (serviceAddress, serviceNode) = try await service.waitForLine { line -> (String, String)? in
            let words = line.split(separator: " ").map(String.init)
            guard let at = words.firstIndex(of: "at"), let node = words.firstIndex(of: "node"), node + 1 < words.count else { return nil }
            return (words[at + 1], words[node + 1])
        }
        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--otlp", collector], name: "router",
            directory: scratch.path
        )
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")

        var traceIDs: [String] = []
        for index in 0..<5 {
            let answer = try await HTTP.post("\(base)/routes/shout", #"{"text":"otel \#(index)"}"#, headers: [("Skynet-Trace", "1")])
            #expect(answer.status == 200)
            traceIDs.append(answer.headers.first(name: "Skynet-Trace-Id") ?? "")
        }

        // Each trace: route (SERVER) ← call (CLIENT) from the router, service (SERVER) from the
        // service process under the call.
        var spans: [JSONValue] = []
        let complete = await eventually(within: 15) {
            spans = TraceContextTests.lines(received)
            return traceIDs.allSatisfy { id in spans.filter { $0["traceId"]?.stringValue == id }.count == 3 }
        }
        #expect(complete, "received: \(spans.count) spans; router log: \(router.stderr.suffix(500))")
        for id in traceIDs {
            let trace = spans.filter { $0["traceId"]?.stringValue == id }
            let route = try #require(trace.first { $0["name"]?.stringValue == "route shout" })
            let call = try #require(trace.first { $0["name"]?.stringValue == "call uppercase" })
            let served = try #require(trace.first { $0["name"]?.stringValue == "uppercase" })
            #expect(route["parentId"]?.stringValue == "" && route["kind"]?.intValue == 2 && route["service"]?.stringValue == "sky-router")
            #expect(call["parentId"] == route["spanId"] && call["kind"]?.intValue == 3 && call["service"]?.stringValue == "sky-router")
            #expect(served["parentId"] == call["spanId"] && served["kind"]?.intValue == 2 && served["service"]?.stringValue == "uppercase")
            #expect(served["instance"]?.stringValue == serviceNode && call["attributes"]?["skynet.instance"]?.stringValue == serviceNode)
            #expect(route["instance"] != served["instance"])
            #expect([route, call, served].allSatisfy { $0["status"]?.intValue == 1 && ($0["end"]?.intValue ?? 0) >= ($0["start"]?.intValue ?? 1) })
        }
        // Both processes exported (each counts what the collector took).
        let routerVars = try await HTTP.get("\(base)/debug/vars").json
        let serviceVars = try await HTTP.get("http://\(serviceAddress)/debug/vars").json
        #expect((routerVars["otlp-spans-exported"]?.intValue ?? 0) >= 10)
        #expect((serviceVars["otlp-spans-exported"]?.intValue ?? 0) >= 5)

        // The collector dies: requests are still answered, the spans dropped and counted.
        receiver.process.signal(SIGKILL)
        _ = try await receiver.process.waitForExit()
        for index in 0..<20 {
            let answer = try await HTTP.post("\(base)/routes/shout", #"{"text":"lost \#(index)"}"#, headers: [("Skynet-Trace", "1")])
            #expect(answer.status == 200)
        }
        var dropped: Int64 = 0
        #expect(await eventually(within: 20) {
            dropped = (try? await HTTP.get("\(base)/debug/vars").json)?["otlp-spans-dropped"]?.intValue ?? 0
            return dropped >= 40
        }, "dropped \(dropped)")
        #expect(((try await HTTP.get("\(base)/debug/vars").json)["otlp-export-errors"]?.intValue ?? 0) >= 1)
        #expect(router.stderr.contains("OTLP export to \(collector)/v1/traces failed"))
    }

    /// A collector shedding load answers 429 and 503 in turn, each with `Retry-After: 1`. At
    /// the stated 3 retries the same batch goes again after each pause and arrives, nothing
    /// dropped; a fourth refusal drops it (counted), and the next batch arrives.
    @Test(arguments: [3, 4]) func aThrottlingCollectorGetsTheSameBatchAgainUpToThreeTimes(refusals: Int) async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        let received = scratch.path + "/received.jsonl"
        let receiver = try await TraceContextTests.helper("otlp_receiver.py", [received, "\(refusals)"], in: scratch)
        defer { receiver.process.signal(SIGKILL) }
        let sky = try SkyProcess(
            ["run", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--services", "uppercase", "--otlp", "http://127.0.0.1:\(receiver.port)"],
            name: "run", directory: scratch.path
        )
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        func tracedRequest() async throws -> String {
            let answer = try await HTTP.post("\(base)/routes/shout", #"{"text":"again"}"#, headers: [("Skynet-Trace", "1")])
            #expect(answer.status == 200)
            return answer.headers.first(name: "Skynet-Trace-Id") ?? ""
        }
        func spans(of traceID: String) -> [JSONValue] { TraceContextTests.lines(received).filter { $0["traceId"]?.stringValue == traceID } }
        let first = try await tracedRequest()
        #expect(await eventually(within: 20) { receiver.process.stdoutLines.filter { $0.hasPrefix("throttled") }.count == refusals })
        var vars = JSONValue.null
        if refusals <= 3 {
            #expect(await eventually(within: 20) { spans(of: first).count >= 2 }, "received \(spans(of: first).count) spans of the trace; receiver: \(receiver.process.stdoutLines)")
            vars = try await HTTP.get("\(base)/debug/vars").json
            #expect(vars["otlp-export-retries"]?.intValue == Int64(refusals))
            #expect((vars["otlp-spans-dropped"]?.intValue ?? 0) == 0 && (vars["otlp-export-errors"]?.intValue ?? 0) == 0)
        } else {
            #expect(await eventually(within: 20) {
                vars = (try? await HTTP.get("\(base)/debug/vars").json) ?? .null
                return (vars["otlp-export-errors"]?.intValue ?? 0) == 1
            }, "\(vars)")
            #expect(vars["otlp-export-retries"]?.intValue == 3, "three retries, then the batch is dropped")
            #expect((vars["otlp-spans-dropped"]?.intValue ?? 0) >= 2)
            #expect(spans(of: first).isEmpty)
            // The collector takes batches again: the next one arrives.
            let second = try await tracedRequest()
            #expect(await eventually(within: 20) { spans(of: second).count >= 2 })
        }
    }

    /// Metrics go to the same collector as the spans, over OTLP (`/v1/metrics`), decoded there
    /// with the official definitions: the route's counts and latency histogram as `/metrics`
    /// shows them, and every `/debug/vars` counter, under the process's service name.
    @Test func metricsReachTheSameCollectorAsTheSpansWithTheScrapedValues() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", "name: shout\nsteps:\n  - service: uppercase\n")
        let received = scratch.path + "/received.jsonl"
        let receiver = try await TraceContextTests.helper("otlp_receiver.py", [received], in: scratch)
        defer { receiver.process.signal(SIGKILL) }
        let sky = try SkyProcess(
            ["run", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--services", "uppercase", "--otlp", "http://127.0.0.1:\(receiver.port)"],
            name: "run", directory: scratch.path, environment: ["OTEL_METRIC_EXPORT_INTERVAL": "300"]
        )
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        var traceID = ""
        for index in 0..<7 {
            let answer = try await HTTP.post("\(base)/routes/shout", #"{"text":"metric \#(index)"}"#, headers: [("Skynet-Trace", "1")])
            #expect(answer.status == 200)
            traceID = answer.headers.first(name: "Skynet-Trace-Id") ?? traceID
        }
        func points(_ name: String, _ attributes: [String: String]) -> [JSONValue] {
            TraceContextTests.lines(received + ".metrics").filter { point in
                point["name"]?.stringValue == name && attributes.allSatisfy { point["attributes"]?[$0.key]?.stringValue == $0.value }
            }
        }
        // Cumulative: some export after the seventh answer carries all seven.
        #expect(await eventually(within: 20) {
            points(SkyMetric.routeRequests.name, ["route": "shout", "outcome": "ok"]).contains { $0["value"]?.doubleValue == 7 }
        }, "metrics received: \(TraceContextTests.lines(received + ".metrics").count); log: \(sky.stderr.suffix(400))")
        let requests = try #require(points(SkyMetric.routeRequests.name, ["route": "shout", "outcome": "ok"]).last)
        #expect(requests["kind"]?.stringValue == "sum" && requests["monotonic"] == .bool(true) && requests["temporality"]?.intValue == 2)
        #expect(requests["description"]?.stringValue == SkyMetric.routeRequests.help)
        let latency = try #require(points(SkyMetric.routeDuration.name, ["route": "shout"]).last { $0["count"]?.intValue == 7 })
        let buckets = latency["buckets"]?.arrayValue?.compactMap(\.intValue) ?? []
        #expect(latency["kind"]?.stringValue == "histogram" && latency["unit"]?.stringValue == "s")
        #expect(latency["bounds"]?.arrayValue?.count == SkyMetric.durationBuckets.count && buckets.count == SkyMetric.durationBuckets.count + 1)
        #expect(buckets.reduce(0, +) == 7 && (latency["sum"]?.doubleValue ?? 0) > 0)
        #expect(points("skynet_var", ["name": "route.shout-processed"]).contains { $0["value"]?.doubleValue == 7 })
        // The same process, under the same name, as its spans at the same receiver.
        var route: JSONValue?
        #expect(await eventually(within: 20) {
            route = TraceContextTests.lines(received).first { $0["traceId"]?.stringValue == traceID && $0["name"]?.stringValue == "route shout" }
            return route != nil
        })
        #expect(requests["service"] == route?["service"] && requests["instance"]?.stringValue?.isEmpty == false)
        // And the same count as a scrape of /metrics.
        let scraped = try await HTTP.get("\(base)/metrics")
        #expect(scraped.text.contains(#"skynet_route_requests_total{route="shout",outcome="ok"} 7"#))
        let vars = try await HTTP.get("\(base)/debug/vars").json
        #expect((vars["otlp-metrics-exports"]?.intValue ?? 0) >= 1 && vars["otlp-metrics-export-errors"]?.intValue ?? 0 == 0)
    }
}
