import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NodeRuntime
import Reaper
import RegistryKit
import RegistrySQLite
import Services
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// The service and reaper nodes as `sky service` and `sky reaper` assemble them, in this
/// process, on a real SQLite registry and real sockets.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ServiceAndReaperNodeTests {
    func registry() throws -> SQLiteRegistry {
        try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-nodes-\(UUID().uuidString)/registry.sqlite")
    }

    /// A service node serves `/call` at the address it reports ready, registers it with the
    /// TTL asked for, and on a stop through its lifecycle drains and deregisters.
    @Test func aServiceNodeServesRegistersAndDeregisters() async throws {
        let registry = try self.registry()
        let context = NodeContext(registry: registry, logger: Logger(label: "node-test"), region: "east")
        var configuration = ServiceNode.Configuration()
        configuration.ttl = 2
        configuration.heartbeat = .milliseconds(200)
        let definition = try #require(BuiltinServices.definition(named: "uppercase", logger: context.logger))
        let node = ServiceNode(definition: definition, configuration: configuration, context: context)
        let ready = Locked<String?>(nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run { address in ready.withLock { $0 = address } } }
            #expect(await eventually(within: 10) { ready.withLock { $0 } != nil })
            let address = try #require(ready.withLock { $0 })
            var request = HTTPClientRequest(url: "http://\(address)/call")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: JSONWriter.string(RequestEnvelope(route: "r", payload: ["text": "hi"]).json)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(try JSONParser.parse(Array(buffer: body)) == ["payload": ["text": "HI"]])
            let record = try #require(try await registry.nodes().first { $0.id == node.host.nodeID })
            #expect(record.address == address && record.ttl == 2 && record.region == "east" && record.service == "uppercase")
            await context.lifecycle.requestStop()
            try await group.waitForAll()
        }
        #expect(try await registry.nodes().isEmpty)
    }

    /// A reaper node registers itself, serves its admin endpoints, and removes a node whose
    /// heartbeat is older than its TTL, recording why.
    @Test func aReaperNodeRemovesADeadNode() async throws {
        let registry = try self.registry()
        let dead = NodeRecord(kind: .service, service: "gone", address: "127.0.0.1:1", heartbeatAt: Date().addingTimeInterval(-30), status: .ready, ttl: 1)
        let alive = NodeRecord(kind: .service, service: "here", address: "127.0.0.1:2", heartbeatAt: Date().addingTimeInterval(3600), status: .ready, ttl: 3600)
        try await registry.register(dead)
        try await registry.register(alive)
        let context = NodeContext(registry: registry, logger: Logger(label: "node-test"))
        var configuration = ReaperNode.Configuration()
        configuration.reaper.interval = .milliseconds(100)
        let node = ReaperNode(configuration: configuration, context: context)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            #expect(await eventually(within: 10) { (try? await registry.nodes().contains { $0.id == dead.id }) == false })
            #expect(try await registry.nodes().contains { $0.id == alive.id })
            #expect(try await registry.events(limit: 20).contains { $0.kind == "reaped" && $0.nodeID == dead.id })
            // Its own record carries the admin address it bound, which answers /health.
            var admin: String?
            #expect(await eventually(within: 10) {
                admin = try? await registry.nodes().first { $0.kind == .reaper }?.address
                return admin?.hasPrefix("127.0.0.1:") == true
            })
            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(admin ?? "")/health"), timeout: .seconds(5))
            #expect(health.status == .ok)
            await context.lifecycle.requestStop()
            try await group.waitForAll()
        }
        #expect(try await registry.nodes().allSatisfy { $0.kind != .reaper })
    }
}
