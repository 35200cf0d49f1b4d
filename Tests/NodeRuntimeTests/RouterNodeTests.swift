import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NodeRuntime
import RegistryKit
import RegistrySQLite
import SkyLib
import RouteModel
import SkyTestSupport
import Synchronization
import Testing
import NIOHTTP1

/// A whole node in this process, as `sky run` assembles it, on a real SQLite registry and
/// real sockets: no `sky` binary, no signals.
@Suite(.serialized) struct RouterNodeTests {
    /// A folder with a routes folder and a registry file, removed afterwards.
    struct Scratch {
        let path = NSTemporaryDirectory() + "sky-node-\(UUID().uuidString)"
        var routes: String { self.path + "/Routes" }

        init() throws {
            try FileManager.default.createDirectory(atPath: self.path + "/Routes", withIntermediateDirectories: true)
        }

        func writeRoute(_ name: String, steps: [String]) throws {
            let yaml = "name: \(name)\nsteps:\n" + steps.map { "  - service: \($0)\n" }.joined()
            // Written beside and renamed, as an editor saves: the loader never sees half a file.
            try yaml.write(toFile: self.routes + "/.\(name).tmp", atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: self.routes + "/.\(name).tmp", toPath: self.routes + "/\(name).yaml")
        }

        func overwriteRoute(_ name: String, steps: [String]) throws {
            try? FileManager.default.removeItem(atPath: self.routes + "/\(name).yaml")
            try self.writeRoute(name, steps: steps)
        }
    }

    /// Starts a node like `sky run` (built-in services in-process, a reaper, the HTTP
    /// initiator on a free port) and answers once it listens.
    func start(_ scratch: Scratch, services: [String]) throws -> (node: RouterNode, registry: SQLiteRegistry, ready: Latch, address: Locked<String>) {
        let registry = try SQLiteRegistry(path: scratch.path + "/registry.sqlite")
        let context = NodeContext(registry: registry, logger: Logger(label: "node-test"))
        var configuration = RouterNode.Configuration()
        configuration.routes = scratch.routes
        configuration.http = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.builtinServices = services
        configuration.runsSourceInitiators = true
        configuration.runsReaper = true
        let ready = Latch()
        let address = Locked("")
        let node = RouterNode(configuration: configuration, context: context) { info in
            address.withLock { $0 = info.address }
            ready.open()
        }
        return (node, registry, ready, address)
    }

    static func post(_ url: String, _ body: String) async throws -> (status: Int, json: JSONValue) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), try JSONParser.parse(Array(buffer: data)))
    }

    @Test func aNodeAnswersReloadsAndStopsWithoutASignal() async throws {
        let scratch = try Scratch()
        try scratch.writeRoute("text", steps: ["uppercase", "wordcount"])
        let (node, registry, ready, address) = try self.start(scratch, services: ["uppercase", "wordcount", "reverse"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            await ready.wait()
            let base = "http://\(address.withLock { $0 })"

            // A request through the router to in-process services.
            let answer = try await Self.post("\(base)/routes/text", #"{"text":"hello big world"}"#)
            #expect(answer.status == 200)
            #expect(answer.json == ["text": "HELLO BIG WORLD", "words": 3])

            // The node is registered with the address it bound, beside its three services.
            let nodes = try await registry.nodes()
            #expect(nodes.contains { $0.kind == .router && $0.address == address.withLock { $0 } })
            #expect(Set(nodes.filter { $0.kind == .service }.map(\.service)) == ["uppercase", "wordcount", "reverse"])

            // An edited route file is served live.
            try scratch.overwriteRoute("text", steps: ["reverse"])
            #expect(await eventually(within: 5) {
                (try? await Self.post("\(base)/routes/text", #"{"text":"abc"}"#).json) == ["text": "cba"]
            })

            // Stopped through its lifecycle (what `sky stop` does): everything drains and
            // deregisters, and `run()` returns.
            await node.context.lifecycle.requestStop()
            try await group.waitForAll()
        }
        #expect(try await registry.nodes().isEmpty)
        #expect(!node.context.lifecycle.isRestartRequested)
    }

    @Test func aStopCommandThroughTheRegistryEndsTheNode() async throws {
        let scratch = try Scratch()
        try scratch.writeRoute("echo", steps: ["echo"])
        let (node, registry, ready, _) = try self.start(scratch, services: ["echo"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            await ready.wait()
            // `sky stop --id ROUTER`: the presence claims it on a heartbeat, the lifecycle ends
            // the group (no SIGTERM to this test process), and the command is marked done.
            let command = NodeCommand(action: .stop, target: node.presence.nodeID, issuedBy: "test")
            try await registry.sendCommands([command])
            try await group.waitForAll()
            let finished = try #require(try await registry.commands(ids: [command.id]).first)
            #expect(finished.state == .done, "\(finished)")
        }
        #expect(try await registry.nodes().isEmpty)
    }

    @Test func anInitiatorNodeServesOnlyItsAdminEndpointsAndRecordsTheirAddress() async throws {
        let scratch = try Scratch()
        let registry = try SQLiteRegistry(path: scratch.path + "/registry.sqlite")
        var configuration = RouterNode.Configuration()
        configuration.routes = scratch.routes
        configuration.runsSourceInitiators = true
        let ready = Latch()
        let address = Locked("")
        let node = RouterNode(configuration: configuration, context: NodeContext(registry: registry, logger: Logger(label: "node-test"))) { info in
            address.withLock { $0 = info.address }
            ready.open()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            await ready.wait()
            let bound = address.withLock { $0 }
            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(bound)/health"), timeout: .seconds(5))
            #expect(health.status == .ok)
            let routes = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(bound)/routes"), timeout: .seconds(5))
            #expect(routes.status == .notFound)
            #expect(await eventually { (try? await registry.nodes().contains { $0.kind == .initiator && $0.address == bound }) == true })
            await node.context.lifecycle.requestStop()
            try await group.waitForAll()
        }
    }
}
