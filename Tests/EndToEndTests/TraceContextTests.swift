import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// W3C trace context through the real `sky router`: a caller that builds its `traceparent`
/// with OpenTelemetry's Python API joins its trace; the service (Python, reading the headers
/// with OpenTelemetry's propagator) sees the router's call span as its parent; the answer
/// carries the route span.
@Suite(.timeLimit(.minutes(3)))
struct TraceContextTests {
    static let helpers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python").path

    /// Starts a Python helper that prints `listening PORT`; answers it and the port.
    static func helper(_ script: String, _ arguments: [String], in scratch: Scratch) async throws -> (process: SkyProcess, port: String) {
        let process = try SkyProcess([helpers + "/" + script] + arguments, name: script, directory: scratch.path, executable: StompTests.python)
        let port = try await process.waitForWord(after: "listening ")
        return (process, port)
    }

    static func lines(_ path: String) -> [JSONValue] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    @Test func aCallersTraceparentIsJoinedCarriedToTheServiceAndAnswered() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("traced.yaml", "name: traced\nsteps:\n  - service: tracecheck\n")
        let seenPath = scratch.path + "/seen.jsonl"
        let service = try await Self.helper("trace_service.py", [seenPath], in: scratch)
        defer { service.process.signal(SIGKILL) }
        let add = try await Command.run([
            SkyProcess.binary, "nodes", "add", "--service", "tracecheck", "--address", "127.0.0.1:\(service.port)", "--registry", scratch.registry,
        ])
        #expect(add.status == 0, "\(add.output)")
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")

        func call(_ mode: String) async throws -> JSONValue {
            let run = try await Command.run([StompTests.python, Self.helpers + "/trace_client.py", "\(base)/routes/traced", mode])
            #expect(run.status == 0, "\(run.output)")
            return try JSONParser.parse(run.output.split(separator: "\n").last.map(String.init) ?? "")
        }

        // A sampled caller: same trace everywhere, parents chained caller → route → call.
        let sampled = try await call("sampled")
        let sent = try #require(sampled["sent"]), answer = try #require(sampled["answer"])
        let traceID = try #require(sent["traceId"]?.stringValue)
        #expect(sampled["status"]?.intValue == 200)
        #expect(answer["valid"]?.boolValue == true && answer["sampled"]?.boolValue == true)
        #expect(answer["traceId"]?.stringValue == traceID, "the answer's traceparent names another trace: \(answer)")
        #expect(answer["skynetTraceId"]?.stringValue == traceID)
        let routeSpan = try #require(answer["spanId"]?.stringValue)
        #expect(routeSpan != sent["spanId"]?.stringValue)

        var seen: [JSONValue] = []
        #expect(await eventually { seen = Self.lines(seenPath); return seen.count == 1 })
        let atService = try #require(seen.first)
        #expect(atService["valid"]?.boolValue == true, "the service's OpenTelemetry propagator could not read \(atService)")
        #expect(atService["traceId"]?.stringValue == traceID)
        #expect(atService["sampled"]?.boolValue == true)
        #expect(atService["state"] == .object(["skytest": "k1", "other": "v2"]), "tracestate not carried untouched: \(atService)")
        let callSpan = try #require(atService["parentId"]?.stringValue)
        #expect(callSpan != routeSpan && callSpan != sent["spanId"]?.stringValue)
        // The envelope's own fields say the same.
        #expect(atService["envelopeTrace"]?["traceId"]?.stringValue == traceID)
        #expect(atService["envelopeTrace"]?["spanId"]?.stringValue == callSpan)

        // The recorded trace: the route span under the caller's span, the call span under it.
        var spans: [Span] = []
        #expect(await eventually(within: 10) {
            let run = try? await Command.run([SkyProcess.binary, "trace", traceID, "--json", "--registry", scratch.registry])
            spans = ((try? JSONParser.parse(run?.output ?? ""))?.arrayValue ?? []).compactMap(Span.init(json:))
            return spans.count == 2
        }, "spans: \(spans)")
        let route = try #require(spans.first { $0.kind == .route })
        #expect(route.spanID == routeSpan && route.parentID == sent["spanId"]?.stringValue)
        #expect(spans.first { $0.kind == .call }.map { $0.spanID == callSpan && $0.parentID == routeSpan } == true)

        // Not sampled by the caller: the decision is followed (nothing recorded), the trace
        // still carried.
        let unsampled = try await call("unsampled")
        let unsampledTrace = try #require(unsampled["sent"]?["traceId"]?.stringValue)
        #expect(unsampled["answer"]?["traceId"]?.stringValue == unsampledTrace)
        #expect(unsampled["answer"]?["sampled"]?.boolValue == false)
        #expect(await eventually { Self.lines(seenPath).count == 2 })
        #expect(Self.lines(seenPath).last?["traceId"]?.stringValue == unsampledTrace)
        #expect(Self.lines(seenPath).last?["sampled"]?.boolValue == false)

        // A traceparent that does not parse starts a new trace, as the recommendation says.
        let garbage = try await call("garbage")
        #expect(garbage["status"]?.intValue == 200)
        #expect(garbage["answer"]?["valid"]?.boolValue == true)
        #expect(garbage["answer"]?["traceId"]?.stringValue != garbage["sent"]?["traceId"]?.stringValue)
    }
}
