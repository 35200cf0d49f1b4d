import Foundation
import Logging
import SkyTestSupport
import Synchronization
import Testing

import SkyLib
import RouteModel
@testable import RegistryKit

/// A node's presence takes the commands addressed to it from a real registry, acts through its
/// ``NodeControl``, and acknowledges each one with its state and events.
@Suite(.timeLimit(.minutes(1)))
struct NodePresenceCommandTests {
    final class Calls: Sendable {
        let stops = Atomic<Int>(0)
    }

    static func presence(_ registry: any Registry, control: NodeControl) -> NodePresence {
        NodePresence(registry: registry, interval: .milliseconds(50), control: control, logger: Logger(label: "test")) { status in
            NodeRecord(kind: .service, service: "uppercase", address: "127.0.0.1:1", status: status)
        }
    }

    static func waitForFinal(_ registry: any Registry, _ command: NodeCommand) async throws -> NodeCommand? {
        var final: NodeCommand?
        _ = try await eventually {
            final = try await registry.commands(ids: [command.id]).first
            return final?.state.isFinal == true
        }
        return final
    }

    @Test(arguments: Backend.allCases)
    func unregisterAndRegisterChangeTheStatusRoutersSee(_ backend: Backend) async throws {
        let registry = try await backend.registry()
        let presence = Self.presence(registry, control: NodeControl())
        await presence.register(status: .ready)
        let loop = Task { await presence.heartbeatLoop() }
        defer { loop.cancel() }

        let unregister = NodeCommand(action: .unregister, target: presence.nodeID, issuedBy: "test")
        try await registry.sendCommands([unregister])
        let done = try #require(try await Self.waitForFinal(registry, unregister))
        #expect(done.state == .done && done.actor == presence.nodeID, "\(done)")
        #expect(presence.status == .unregistered)
        #expect(try await registry.nodes().first?.status == .unregistered)

        let register = NodeCommand(action: .register, target: presence.nodeID, issuedBy: "test")
        try await registry.sendCommands([register])
        #expect(try await Self.waitForFinal(registry, register)?.state == .done)
        #expect(try await registry.nodes().first?.status == .ready)
        // A second register is harmless and says so.
        let again = NodeCommand(action: .register, target: presence.nodeID, issuedBy: "test")
        try await registry.sendCommands([again])
        #expect(try await Self.waitForFinal(registry, again)?.result == "already ready")

        let kinds = try await registry.events(limit: 20).map(\.kind)
        #expect(kinds.filter { $0 == "command-acknowledged" }.count == 3)
        #expect(kinds.filter { $0 == "command-done" }.count == 3)
    }

    @Test func aStopFinishesOnlyOnceTheNodeHasDeregistered() async throws {
        let registry = try await Backend.sqlite.registry()
        let calls = Calls()
        let control = NodeControl(handlers: [
            .stop: { _ in
                calls.stops.add(1, ordering: .relaxed)
                return .afterDeregistering("drained")
            },
            .restart: { _ in throw SkyError(.configuration, "not here") },
        ])
        let presence = Self.presence(registry, control: control)
        await presence.register(status: .ready)
        let loop = Task { await presence.heartbeatLoop() }
        defer { loop.cancel() }

        let stop = NodeCommand(action: .stop, target: presence.nodeID, issuedBy: "test")
        let restart = NodeCommand(action: .restart, target: presence.nodeID, issuedBy: "test")
        // Deploy is not this node's: it stays pending for whoever handles it.
        let deploy = NodeCommand(action: .deploy, target: presence.nodeID, issuedBy: "test")
        try await registry.sendCommands([stop, restart, deploy])
        #expect(try await Self.waitForFinal(registry, restart)?.result == "not here")
        #expect(await eventually { calls.stops.load(ordering: .relaxed) == 1 })
        #expect(try await registry.commands(ids: [stop.id]).first?.state == .acknowledged)

        await presence.announceDraining()
        await presence.deregister()
        let stopped = try #require(try await registry.commands(ids: [stop.id]).first)
        #expect(stopped.state == .done && stopped.result == "drained")
        #expect(try await registry.nodes().isEmpty)
        let deregistered = try #require(try await registry.events(limit: 20).first { $0.kind == "deregistered" })
        #expect(deregistered.message.contains("stop by command \(stop.shortID)"))
        #expect(try await registry.commands(ids: [deploy.id]).first?.state == .pending)
        #expect(calls.stops.load(ordering: .relaxed) == 1)
    }

    @Test func aNodeWithoutControlClaimsNothing() async throws {
        let registry = try await Backend.sqlite.registry()
        let presence = Self.presence(registry, control: .none)
        await presence.register(status: .ready)
        let command = NodeCommand(action: .unregister, target: presence.nodeID, issuedBy: "test")
        try await registry.sendCommands([command])
        await presence.takeCommands()
        #expect(try await registry.commands(ids: [command.id]).first?.state == .pending)
        #expect(presence.status == .ready)
    }
}
