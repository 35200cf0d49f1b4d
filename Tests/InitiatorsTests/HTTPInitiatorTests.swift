import AdminHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SkyTestSupport
import Testing

@testable import Initiators
@testable import SkyLib
import RouteModel

/// A route runner stand-in: answers by route name. The end-to-end tests run the real router.
struct FakeRunner: RouteRunner {
    let behaviour: @Sendable (RequestEnvelope) async throws(SkyError) -> RouteResult
    let routes: [String]
    let sampler = TraceSampler(perSecond: 100)

    func run(_ request: RequestEnvelope) async throws(SkyError) -> RouteResult { try await self.behaviour(request) }

    func routeSummaries() -> [RouteSummary] {
        self.routes.map { RouteSummary(route: Route(name: $0, steps: [RouteStep(service: "s")]), revision: 3, file: "Routes/\($0).yaml", loadedAt: Date(timeIntervalSince1970: 0)) }
    }

    func route(named name: String) -> Route? { self.routeSummaries().first { $0.route.name == name }?.route }
}

struct HTTPInitiatorTests {
    func initiator(maxBody: Int = 1024, token: String? = nil, _ behaviour: @escaping @Sendable (RequestEnvelope) async throws(SkyError) -> RouteResult) -> HTTPInitiator {
        var configuration = HTTPInitiator.Configuration()
        configuration.maxBodyBytes = maxBody
        configuration.port = 0
        configuration.token = token
        return HTTPInitiator(
            configuration: configuration,
            runner: FakeRunner(behaviour: behaviour, routes: ["text", "broken"]),
            admin: AdminEndpoints(counters: Counters()),
            eventLoopGroup: TestIO.eventLoopGroup,
            logger: Logger(label: "test")
        )
    }

    /// The body as JSON; a body that is not JSON reads as a string that fails every comparison.
    func json(_ buffer: ByteBuffer) -> JSONValue {
        (try? JSONParser.parse(buffer.readableBytesView)) ?? .string("not JSON: \(String(buffer: buffer))")
    }

    @Test func answersTheFinalDocumentWithErrorsAndHeaders() async throws {
        let initiator = self.initiator { request in
            #expect(request.route == "text" && request.meta["source"] == "http")
            return RouteResult(payload: ["text": "HI"], errors: [StepError(service: "enrich", message: "down – é", code: "service_error")])
        }
        let app = Application(router: initiator.buildRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: #"{"text":"hi"}"#)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(self.json(response.body) == ["text": "HI", "errors": [["service": "enrich", "message": "down – é", "code": "service_error"]]])
                #expect(response.headers[SkynetHeaders.errors] == #"[{"code":"service_error","message":"down \u2013 \u00e9","service":"enrich"}]"#)
                #expect(response.headers[SkynetHeaders.traceID]?.count == 32)
                #expect(response.headers[SkynetHeaders.requestID] != nil)
            }
        }
    }

    @Test func nonObjectDocumentsCarryErrorsOnlyInTheHeader() async throws {
        let initiator = self.initiator { _ in RouteResult(payload: [1, 2], errors: [StepError(service: "s", message: "m", code: "c")]) }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: "[1]")) { response in
                #expect(self.json(response.body) == [1, 2])
                #expect(response.headers[SkynetHeaders.errors] != nil)
            }
        }
    }

    @Test func mapsFailuresToStatusesAndJSONBodies() async throws {
        let initiator = self.initiator(maxBody: 64) { request throws(SkyError) in
            switch request.payload["fail"]?.stringValue {
            case "step": throw SkyError(.stepFailed, "service down", route: "text", step: 2, service: "wordcount")
            case "deadline": throw SkyError(.deadlineExceeded, "timed out", route: "text", step: 1, service: "slow")
            default: return RouteResult(payload: request.payload)
            }
        }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            try await client.execute(uri: "/routes/nope", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .notFound)
                #expect(self.json(response.body)["error"]?["code"] == "route_not_found")
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: "{\n  \"a\": tru\n}")) { response in
                #expect(response.status == .badRequest)
                #expect(self.json(response.body)["error"]?["message"] == "malformed JSON: invalid literal, expected 'true' at line 2, column 8")
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: "")) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: "[" + String(repeating: "1,", count: 100) + "1]")) { response in
                #expect(response.status == .contentTooLarge)
                #expect(self.json(response.body)["error"]?["code"] == "payload_too_large")
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: #"{"fail":"step"}"#)) { response in
                #expect(response.status == .badGateway)
                let error = self.json(response.body)["error"]
                #expect(error?["step"] == 2 && error?["service"] == "wordcount" && error?["message"] == "service down")
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: #"{"fail":"deadline"}"#)) { response in
                #expect(response.status == .gatewayTimeout)
            }
        }
    }

    @Test func listsRoutesAndServesAdminEndpoints() async throws {
        let initiator = self.initiator { request in RouteResult(payload: request.payload) }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            try await client.execute(uri: "/routes", method: .get) { response in
                let routes = self.json(response.body)["routes"]?.arrayValue ?? []
                #expect(routes.map { $0["name"] } == ["text", "broken"])
                #expect(routes.first?["revision"] == 3 && routes.first?["file"] == "Routes/text.yaml")
            }
            try await client.execute(uri: "/routes/text", method: .get) { response in
                #expect(self.json(response.body)["steps"] == [["service": "s"]])
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/debug/vars", method: .get) { response in
                #expect(self.json(response.body)["uptimeSeconds"] != nil)
            }
        }
    }

    @Test func passesTheCallersTimeoutAndTraceIntoTheEnvelope() async throws {
        let initiator = self.initiator { request in
            RouteResult(payload: ["deadline": .int(request.deadline ?? 0), "trace": .string(request.trace.traceID), "id": .string(request.id)])
        }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            let before = WallClock.epochMilliseconds()
            var headers = HTTPFields()
            headers[SkynetHeaders.timeout] = "500"
            headers[SkynetHeaders.traceID] = "abc123"
            headers[SkynetHeaders.requestID] = "req-1"
            try await client.execute(uri: "/routes/text", method: .post, headers: headers, body: ByteBuffer(string: "{}")) { response in
                let body = self.json(response.body)
                let deadline = body["deadline"]?.intValue ?? 0
                #expect(deadline >= before + 500 && deadline <= WallClock.epochMilliseconds() + 500)
                #expect(body["trace"] == "abc123" && body["id"] == "req-1")
            }
        }
    }

    @Test func requiresTheTokenWhenSetExceptForHealth() async throws {
        let initiator = self.initiator(token: "s3cret") { request in RouteResult(payload: request.payload) }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/routes", method: .get, headers: [.authorization: "Bearer nope"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/routes/text", method: .post, headers: [.authorization: "Bearer s3cret"], body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// One smoke test over a real socket.
    @Test func servesOverALiveSocket() async throws {
        let initiator = self.initiator { request in RouteResult(payload: request.payload) }
        try await Application(router: initiator.buildRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: #"{"a":1}"#)) { response in
                #expect(response.status == .ok)
                #expect(self.json(response.body) == ["a": 1])
            }
        }
    }

    /// The body limit README.md states (1 MiB) is the default, and holds at its value: a body
    /// of exactly 1 MiB runs, one byte more is 413, and the request after it runs.
    @Test func aBodyOfExactlyTheStatedMebibyteRunsAndOneByteMoreIs413() async throws {
        #expect(HTTPInitiator.Configuration().maxBodyBytes == 1 << 20)
        var configuration = HTTPInitiator.Configuration()
        configuration.port = 0
        let initiator = HTTPInitiator(
            configuration: configuration, runner: FakeRunner(behaviour: { RouteResult(payload: ["bytes": .int(Int64(JSONWriter.string($0.payload).utf8.count))]) }, routes: ["text"]),
            admin: AdminEndpoints(counters: Counters()), eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "test")
        )
        // A JSON string: its quotes and its characters, `size` bytes in all.
        @Sendable func body(_ size: Int) -> ByteBuffer { ByteBuffer(string: "\"" + String(repeating: "x", count: size - 2) + "\"") }
        try await Application(router: initiator.buildRouter()).test(.router) { client in
            try await client.execute(uri: "/routes/text", method: .post, body: body(1 << 20)) { response in
                #expect(response.status == .ok)
                #expect(self.json(response.body) == ["bytes": .int(1 << 20)])
            }
            try await client.execute(uri: "/routes/text", method: .post, body: body((1 << 20) + 1)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(self.json(response.body)["error"]?["code"] == "payload_too_large")
            }
            try await client.execute(uri: "/routes/text", method: .post, body: ByteBuffer(string: #""next""#)) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// `keepFailed: true` keeps failures of the route's work, not refusals at the door.
    @Test func keepFailedKeepsTheRoutesFailuresNotItsRefusals() {
        for code in [SkyError.Code.stepFailed, .deadlineExceeded, .rejected, .noInstance] { #expect(HTTPInitiator.keeps(SkyError(code, "x")), "\(code)") }
        for code in [SkyError.Code.rateLimited, .draining, .cancelled, .routeNotFound, .unauthorized] { #expect(!HTTPInitiator.keeps(SkyError(code, "x")), "\(code)") }
    }
}
