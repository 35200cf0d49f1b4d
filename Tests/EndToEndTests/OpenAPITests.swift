import AsyncHTTPClient
import Foundation
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The OpenAPI document of the real `sky run`: the copy kept in docs/ is what it serves, it
/// validates with openapi-spec-validator, and schemathesis, fuzzing the live API from it,
/// finds no server error and no answer that breaks the document.
@Suite(.timeLimit(.minutes(5)))
struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var venv: String { URL(fileURLWithPath: StompTests.python).deletingLastPathComponent().path }

    @Test func theServedDocumentIsTheKeptOneValidAndTheLiveAPIKeepsToIt() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")

        let served = try await HTTP.get("\(base)/openapi.json")
        #expect(served.status == 200)
        #expect(served.headers.first(name: "Content-Type") == "application/json")
        let document = served.json
        #expect(document["openapi"] == "3.1.0")
        // One operation per route, so a client can be generated per route.
        for route in ["text", "retry", "tolerant"] {
            #expect(document["paths"]?["/routes/\(route)"]?["post"]?["operationId"]?.stringValue == "route_\(route)")
        }
        for path in ["/routes", "/routes/{name}", "/health", "/debug/vars", "/metrics", "/v1/nodes/{id}", "/openapi.json"] {
            #expect(document["paths"]?[path] != nil, "\(path) is not described")
        }
        // docs/openapi.json is this document (regenerate: curl -s localhost:8080/openapi.json | python3 -m json.tool --sort-keys > docs/openapi.json).
        let kept = try JSONParser.parse(String(contentsOfFile: Self.root + "/docs/openapi.json", encoding: .utf8))
        #expect(kept == document, "docs/openapi.json differs from what sky run serves; regenerate it (see the comment above)")

        let file = scratch.path + "/openapi.json"
        try served.text.write(toFile: file, atomically: true, encoding: .utf8)
        let validated = try await Command.run([Self.venv + "/openapi-spec-validator", file])
        #expect(validated.status == 0, "openapi-spec-validator: \(validated.output)")

        // A bounded fuzz of every operation; the checks are the document's promises: no 5xx,
        // documented statuses, content types, headers and bodies. The deadline header is
        // fixed at 10 s: fuzzed, it asks for deadlines of a few milliseconds, and a route that
        // cannot finish in 3 ms answers 502/504 as documented (SkyRunTests and FaultTests
        // cover deadlines); every other header and body is fuzzed.
        let fuzz = try await Command.run([
            Self.venv + "/schemathesis", "--no-color", "run", "\(base)/openapi.json", "--url", base, "--max-examples", "15", "--seed", "7",
            "--generation-database", "none", "--request-timeout", "10", "-H", "Skynet-Timeout-Ms: 10000",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ], timeout: 240)
        #expect(fuzz.status == 0, "schemathesis: \(fuzz.output.suffix(6000))")
        #expect(fuzz.output.contains("passed") || fuzz.output.contains("PASSED"), "\(fuzz.output.suffix(2000))")

        // The token, when set, is in the document: a security scheme and 401 on every operation.
        let locked = try SkyProcess(
            ["run", "--http", "127.0.0.1:0", "--registry", "sqlite:\(scratch.path)/locked.sqlite"], name: "locked", directory: scratch.path,
            environment: ["SKYNET_TOKEN": "s3cret"]
        )
        defer { locked.signal(SIGKILL) }
        let lockedBase = try await locked.waitForWord(after: "HTTP       ")
        #expect(try await HTTP.get("\(lockedBase)/openapi.json").status == 401)
        let secured = try await HTTP.send(
            { var request = HTTPClientRequest(url: "\(lockedBase)/openapi.json"); request.headers.add(name: "Authorization", value: "Bearer s3cret"); return request }(),
            timeout: 10
        ).json
        #expect(secured["components"]?["securitySchemes"]?["token"]?["scheme"] == "bearer")
        #expect(secured["paths"]?["/routes/text"]?["post"]?["responses"]?["401"] != nil)
    }
}
