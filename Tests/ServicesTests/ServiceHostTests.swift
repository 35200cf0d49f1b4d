import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Routing
import ServiceLifecycle
import SkyTestSupport
import Testing

@testable import Services
@testable import SkyLib
import RouteModel
import RegistrySQLite
import RegistryKit

/// A real `ServiceHost` on a real socket and a real SQLite registry, called over HTTP.
@Suite(.timeLimit(.minutes(1)))
struct ServiceHostTests {
    let registry: SQLiteRegistry

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-host-\(UUID().uuidString)/r.sqlite")
    }

    func withHost(
        _ handler: any ServiceHandler,
        name: String = "svc",
        token: String? = nil,
        _ body: (ServiceHost, String, ServiceGroup) async throws -> Void
    ) async throws {
        var configuration = ServiceHost.Configuration()
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.drainDelay = .milliseconds(100)
        configuration.token = token
        let host = ServiceHost(
            definition: ServiceDefinition(name: name, version: "2.1.0", handler: handler),
            configuration: configuration, registry: self.registry, eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "host-test")
        )
        let group = ServiceGroup(services: [host], logger: Logger(label: "host-test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let address = try await host.waitUntilReady()
            try await body(host, address, group)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    func post(_ address: String, _ body: String, headers: [(String, String)] = []) async throws -> (status: Int, json: JSONValue) {
        var request = HTTPClientRequest(url: "http://\(address)/call")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), try JSONParser.parse(buffer.readableBytesView))
    }

    @Test func servesCallsAndRegistersItself() async throws {
        try await self.withHost(Uppercase()) { host, address, _ in
            let envelope = RequestEnvelope(route: "r", payload: ["text": "hi"])
            let (status, json) = try await self.post(address, JSONWriter.string(envelope.json))
            #expect(status == 200)
            #expect(json == ["payload": ["text": "HI"]])
            let node = try #require(try await self.registry.nodes().first { $0.id == host.nodeID })
            #expect(node.service == "svc" && node.version == "2.1.0" && node.address == address && node.status == .ready && node.kind == .service)
            // Heartbeats carry stats.
            #expect(await eventually { (try? await self.registry.nodes().first { $0.id == host.nodeID }?.stats["processed"]) == 1 })
        }
        #expect(try await self.registry.nodes().isEmpty)
        #expect(try await self.registry.events(limit: 5).map(\.kind) == ["deregistered", "registered"])
    }

    @Test func answersClearErrors() async throws {
        let failing = ClosureHandler { request in
            if request.payload["retry"] == true { throw SkyError(.serviceError, "busy", retryable: true) }
            throw NSError(domain: "x", code: 1)
        }
        try await self.withHost(failing) { _, address, _ in
            var (status, json) = try await self.post(address, "{not json")
            #expect(status == 400)
            #expect(json["error"]?["message"]?.stringValue?.contains("line 1, column 2") == true)
            (status, json) = try await self.post(address, #"{"payload": 1}"#)
            #expect(status == 400 && json["error"]?["message"] == "request envelope needs a string field \"route\"")
            (status, json) = try await self.post(address, JSONWriter.string(RequestEnvelope(route: "r", payload: ["retry": true]).json))
            #expect(status == 500 && json["error"]?["retryable"] == true && json["error"]?["message"] == "busy")
            (status, json) = try await self.post(address, JSONWriter.string(RequestEnvelope(route: "r", payload: [:]).json))
            #expect(status == 500 && json["error"]?["retryable"] == false && json["error"]?["code"] == "service_error")
        }
    }

    @Test func stopsWorkAtTheCallersDeadline() async throws {
        try await self.withHost(Slow(sleepMilliseconds: 30_000)) { _, address, _ in
            let envelope = RequestEnvelope(route: "r", payload: [:], deadline: WallClock.epochMilliseconds() + 100)
            let (status, json) = try await self.post(address, JSONWriter.string(envelope.json))
            #expect(status == 504 && json["error"]?["code"] == "deadline_exceeded")
            let (status2, _) = try await self.post(address, JSONWriter.string(RequestEnvelope(route: "r", payload: [:]).json), headers: [("Skynet-Timeout-Ms", "50")])
            #expect(status2 == 504)
        }
    }

    @Test func requiresTheTokenWhenSet() async throws {
        try await self.withHost(Echo(), token: "s3cret") { _, address, _ async throws in
            let body = JSONWriter.string(RequestEnvelope(route: "r", payload: 1).json)
            #expect(try await self.post(address, body).status == 401)
            #expect(try await self.post(address, body, headers: [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await self.post(address, body, headers: [("Authorization", "Bearer s3cret")]).status == 200)
            // The admin endpoints too, but /health, which the reaper probes without a token.
            for (path, expected) in [("/debug/vars", 401), ("/metrics", 401), ("/health", 200)] {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(address)\(path)"), timeout: .seconds(10))
                #expect(Int(response.status.code) == expected, "GET \(path)")
            }
        }
    }

    /// On shutdown the node announces draining, finishes the call in flight, then deregisters.
    @Test func drainsFinishesInFlightWorkAndDeregisters() async throws {
        let gate = Gate()
        let started = Gate()
        let handler = ClosureHandler { request in
            started.open()
            await gate.wait()
            return ServiceResponse(payload: request.payload)
        }
        try await self.withHost(handler) { host, address, group in
            async let inFlight = self.post(address, JSONWriter.string(RequestEnvelope(route: "r", payload: ["n": 7]).json))
            await started.wait()
            await group.triggerGracefulShutdown()
            #expect(await eventually { (try? await self.registry.nodes().first { $0.id == host.nodeID }?.status) == .draining })
            gate.open()
            let (status, json) = try await inFlight
            #expect(status == 200 && json["payload"] == ["n": 7])
        }
        #expect(try await self.registry.nodes().isEmpty)
    }
    /// Answers a string payload of the length the request asks for (`{"size": N}`).
    struct Sized: ServiceHandler {
        func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
            ServiceResponse(payload: .string(String(repeating: "x", count: request.payload["size"]?.intValue.map(Int.init) ?? 0)))
        }
    }

    /// The `/call` limit README.md states (4 MiB) is the default and holds at its value: an
    /// envelope of exactly 4 MiB is served, one byte more is 413, and the call after it is
    /// served.
    @Test func aCallOfExactlyTheStatedFourMebibytesIsServedAndOneByteMoreIs413() async throws {
        #expect(ServiceHost.Configuration().maxBodyBytes == 4 << 20)
        let exact = Self.envelope(4 << 20)
        let over = Self.envelope((4 << 20) + 1)
        #expect(exact.utf8.count == 4 << 20 && over.utf8.count == (4 << 20) + 1)
        try await self.withHost(Echo()) { _, address, _ in
            let statuses = [try await self.postStatus(address, exact), try await self.postStatus(address, over), try await self.postStatus(address, Self.envelope(1024))]
            #expect(statuses == [200, 413, 200])
        }
    }

    /// An envelope `size` bytes long: its payload a string padded to fit.
    static func envelope(_ size: Int) -> String {
        let empty = JSONWriter.string(RequestEnvelope(id: "r1", route: "r", payload: "").json)
        return JSONWriter.string(RequestEnvelope(id: "r1", route: "r", payload: .string(String(repeating: "e", count: size - empty.utf8.count))).json)
    }

    func postStatus(_ address: String, _ body: String) async throws -> Int {
        var request = HTTPClientRequest(url: "http://\(address)/call")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        _ = try await response.body.collect(upTo: 64 << 20)
        return Int(response.status.code)
    }

    /// The response limit SECURITY.md states (16 MiB), held at its value by the router's
    /// client against a real service: an answer of exactly 16 MiB is read, one byte more is a
    /// `bad_response` naming the limit, and the next call is read.
    @Test func aResponseOfExactlyTheStatedSixteenMebibytesIsReadAndOneByteMoreIsRefused() async throws {
        let client = HTTPServiceClient(eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "client-test"))
        #expect(client.maxResponseBytes == 16 << 20)
        let overhead = JSONWriter.string(ServiceResponse(payload: "").json).utf8.count
        try await self.withHost(Sized()) { host, address, _ in
            let instance = try #require(try await self.registry.nodes().first { $0.id == host.nodeID })
            func call(_ bytes: Int) async -> Result<ServiceResponse, SkyError> {
                do throws(SkyError) {
                    return .success(try await client.call(RequestEnvelope(route: "r", payload: ["size": .int(Int64(bytes - overhead))]), instance: instance, deadline: .now() + .seconds(20)))
                } catch {
                    return .failure(error)
                }
            }
            let exact = await call(16 << 20)
            #expect((try? exact.get().payload.stringValue?.utf8.count) == (16 << 20) - overhead)
            guard case .failure(let refused) = await call((16 << 20) + 1) else {
                Issue.record("a response one byte over the limit was read")
                return
            }
            #expect(refused.code == .badResponse && refused.message.contains("\(16 << 20)"), "\(refused)")
            #expect((try? await call(100).get().payload.stringValue?.utf8.count) == 100 - overhead)
        }
        try await client.shutdown()
    }
}

struct ClosureHandler: ServiceHandler {
    let body: @Sendable (RequestEnvelope) async throws -> ServiceResponse
    func handle(_ request: RequestEnvelope) async throws -> ServiceResponse { try await self.body(request) }
}


/// Tests open a gate to let blocked work finish.
typealias Gate = Latch
