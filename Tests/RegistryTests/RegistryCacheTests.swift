import Foundation
import Logging
import Synchronization
import Testing

import SkyLib
@testable import RegistrySQLite
@testable import RegistryKit

struct RegistryCacheTests {
    let registry: SQLiteRegistry

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-cache-\(UUID().uuidString)/r.sqlite")
    }

    @Test func servesReadyUnexpiredInstancesByVersion() async throws {
        let cache = RegistryCache(registry: self.registry, logger: Logger(label: "test"))
        var v1 = RegistryConformance.node("upper", address: "127.0.0.1:1")
        v1.version = "1.4.0"
        var v2 = RegistryConformance.node("upper", address: "127.0.0.1:2")
        v2.version = "2.0.0"
        let draining = RegistryConformance.node("upper", address: "127.0.0.1:3", status: .draining)
        let expired = RegistryConformance.node("upper", address: "127.0.0.1:4", heartbeatAgo: 60)
        for node in [v1, v2, draining, expired] { try await self.registry.register(node) }
        #expect(cache.instances(of: "upper").isEmpty)
        #expect(await cache.refresh())
        #expect(Set(cache.instances(of: "upper").map(\.id)) == [v1.id, v2.id])
        #expect(cache.instances(of: "upper", version: "1.*").map(\.id) == [v1.id])
        #expect(cache.instances(of: "lower").isEmpty)
        // Every kind, the same rule (what `sky dns` answers), with the seconds each has left.
        let unregistered = RegistryConformance.node("other", address: "127.0.0.1:5", status: .unregistered)
        try await self.registry.register(unregistered)
        #expect(await cache.refresh())
        let ready = cache.readyNodes()
        #expect(Set(ready.map(\.node.id)) == [v1.id, v2.id])
        #expect(ready.allSatisfy { $0.secondsLeft > 0 && $0.secondsLeft <= $0.node.ttl })
    }

    /// When the registry fails the cache keeps its last good copy.
    @Test func keepsServingThroughAnOutage() async throws {
        let flaky = SwitchableRegistry(self.registry)
        let cache = RegistryCache(registry: flaky, logger: Logger(label: "test"))
        let node = RegistryConformance.node("upper", address: "127.0.0.1:9")
        try await self.registry.register(node)
        #expect(await cache.refresh())
        flaky.down.withLock { $0 = true }
        #expect(await cache.refresh() == false)
        #expect(cache.isStale)
        #expect(cache.instances(of: "upper").map(\.id) == [node.id])
        // Long into the outage (past the node's TTL, when nobody could heartbeat) the last
        // good copy still routes: expiry is judged when the registry last answered.
        #expect(cache.instances(of: "upper", now: Date().addingTimeInterval(60)).map(\.id) == [node.id])
        flaky.down.withLock { $0 = false }
        #expect(await cache.refresh())
        #expect(!cache.isStale)
    }
}

/// A real registry that can be made to fail, to stage an outage.
final class SwitchableRegistry: Registry {
    let base: any Registry
    let down = Mutex(false)

    init(_ base: any Registry) { self.base = base }

    func check() throws {
        if self.down.withLock({ $0 }) { throw SkyError(.registry, "registry is down (test)", retryable: true) }
    }

    var displayName: String { "switchable(\(self.base.displayName))" }
    func register(_ node: NodeRecord) async throws { try self.check(); try await self.base.register(node) }
    func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try self.check()
        return try await self.base.heartbeat(nodeID: nodeID, status: status, stats: stats, at: at)
    }
    func deregister(nodeID: String) async throws { try self.check(); try await self.base.deregister(nodeID: nodeID) }
    func nodes() async throws -> [NodeRecord] { try self.check(); return try await self.base.nodes() }
    func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try self.check()
        return try await self.base.reap(nodeID: nodeID, heartbeatBefore: before)
    }
    func record(_ event: RegistryEvent) async throws { try self.check(); try await self.base.record(event) }
    func events(limit: Int) async throws -> [RegistryEvent] { try self.check(); return try await self.base.events(limit: limit) }
    func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        try self.check()
        return try await self.base.acquireLease(name, holder: holder, duration: duration, now: now)
    }
    func recordSpans(_ spans: [Span]) async throws { try self.check(); try await self.base.recordSpans(spans) }
    func spans(traceID: String) async throws -> [Span] { try self.check(); return try await self.base.spans(traceID: traceID) }
    func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws { try self.check(); try await self.base.mergeCounts(nodeID: nodeID, counts: counts, at: at) }
    func counts() async throws -> GCounter { try self.check(); return try await self.base.counts() }
    func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        try self.check()
        return try await self.base.claimDedupe(route: route, key: key, owner: owner, now: now, expiresAt: expiresAt, runningUntil: runningUntil)
    }
    func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws { try self.check(); try await self.base.completeDedupe(route: route, key: key, owner: owner, answer: answer) }
    func releaseDedupe(route: String, key: String, owner: String) async throws { try self.check(); try await self.base.releaseDedupe(route: route, key: key, owner: owner) }
    func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try self.check()
        return try await self.base.renewDedupe(route: route, key: key, owner: owner, runningUntil: runningUntil)
    }
    func latestRouteSpans(limit: Int) async throws -> [Span] { try self.check(); return try await self.base.latestRouteSpans(limit: limit) }
    func storedRoutes() async throws -> [StoredRoute] { try self.check(); return try await self.base.storedRoutes() }
    func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute] {
        try self.check()
        return try await self.base.storeRoutes(routes, prune: prune)
    }
    func sendCommands(_ commands: [NodeCommand]) async throws { try self.check(); try await self.base.sendCommands(commands) }
    func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        try self.check()
        return try await self.base.claimCommands(targets: targets, actions: actions, actor: actor, now: now)
    }
    func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        try self.check()
        return try await self.base.updateCommand(id: id, from: from, to: to, result: result, now: now)
    }
    func commands(ids: [String]) async throws -> [NodeCommand] { try self.check(); return try await self.base.commands(ids: ids) }
}

struct RegistryCacheChangesTests {
    @Test func aQuerySeesItsNodesAddedChangedAndRemoved() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-watch-\(UUID().uuidString)/r.sqlite")
        let cache = RegistryCache(registry: registry, logger: Logger(label: "test"))
        let a = RegistryConformance.node("upper", address: "127.0.0.1:1")
        let other = RegistryConformance.node("lower", address: "127.0.0.1:2")
        try await registry.register(a)
        try await registry.register(other)
        #expect(await cache.refresh())

        var changes = cache.changes(matching: NodeQuery(service: "upper", status: .ready)).makeAsyncIterator()
        // What matches now comes first.
        #expect(Self.describe(await changes.next()) == "added \(a.id)")

        // A heartbeat alone is no change; a new instance is.
        _ = try await registry.heartbeat(nodeID: a.id, status: .ready, stats: ["processed": 5], at: Date())
        let b = RegistryConformance.node("upper", address: "127.0.0.1:3")
        try await registry.register(b)
        #expect(await cache.refresh())
        #expect(Self.describe(await changes.next()) == "added \(b.id)")

        // Draining: it no longer matches a ready-only query.
        _ = try await registry.heartbeat(nodeID: a.id, status: .draining, stats: [:], at: Date())
        #expect(await cache.refresh())
        #expect(Self.describe(await changes.next()) == "removed \(a.id)")

        // Gone from the registry; the other service's node never showed up.
        try await registry.deregister(nodeID: b.id)
        #expect(await cache.refresh())
        #expect(Self.describe(await changes.next()) == "removed \(b.id)")

        // Without a status filter, a change of status is a `.changed`.
        var all = cache.changes(matching: NodeQuery(service: "upper")).makeAsyncIterator()
        #expect(Self.describe(await all.next()) == "added \(a.id)")
        _ = try await registry.heartbeat(nodeID: a.id, status: .ready, stats: [:], at: Date())
        #expect(await cache.refresh())
        guard case .changed(let from, let to) = await all.next() else {
            Issue.record("expected a change")
            return
        }
        #expect(from.status == .draining && to.status == .ready)
    }

    static func describe(_ change: NodeChange?) -> String {
        switch change {
        case .added(let node): "added \(node.id)"
        case .removed(let node): "removed \(node.id)"
        case .changed(_, let node): "changed \(node.id)"
        case nil: "none"
        }
    }
}
