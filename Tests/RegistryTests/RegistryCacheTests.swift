import Foundation
import Logging
import Synchronization
import Testing

import SkyLib
import RouteModel
@testable import RegistrySQLite
@testable import RegistryKit

struct RegistryCacheTests {
    let registry: SQLiteRegistry

    init() throws {
        self.registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-cache-\(UUID().uuidString)/r.sqlite")
    }

    @Test func servesReadyUnexpiredInstancesByVersion() async throws {
        let cache = RegistryCache(directory: self.registry, registryName: self.registry.displayName, logger: Logger(label: "test"))
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

    /// A registry that answers reads while no heartbeat lands (its writes stall): nobody's
    /// heartbeat is fresh, so none is judged by the wall clock; a node whose heartbeat was
    /// already stale before the others' stopped still expires.
    @Test func whenNoHeartbeatLandsExpiryIsJudgedAtTheFreshestOne() async throws {
        let cache = RegistryCache(directory: self.registry, registryName: self.registry.displayName, logger: Logger(label: "test"))
        let stalled = [RegistryConformance.node("upper", address: "127.0.0.1:1", heartbeatAgo: 10), RegistryConformance.node("upper", address: "127.0.0.1:2", heartbeatAgo: 9)]
        let deadBefore = RegistryConformance.node("upper", address: "127.0.0.1:3", heartbeatAgo: 60)
        for node in stalled + [deadBefore] { try await self.registry.register(node) }
        #expect(await cache.refresh())
        #expect(Set(cache.instances(of: "upper").map(\.id)) == Set(stalled.map(\.id)))
        // Once heartbeats land again (this router's own first, say), the others still queued
        // behind the stall are judged by it for a grace; then by the wall clock again.
        try await self.registry.register(RegistryConformance.node("router", address: "127.0.0.1:4"))
        #expect(await cache.refresh())
        #expect(Set(cache.instances(of: "upper").map(\.id)) == Set(stalled.map(\.id)))
        #expect(cache.instances(of: "upper", now: Date().addingTimeInterval(RegistryCache.recoveryGrace + 1)).isEmpty)
    }

    /// When the registry fails the cache keeps its last good copy.
    @Test func keepsServingThroughAnOutage() async throws {
        let flaky = SwitchableNodes(self.registry)
        let cache = RegistryCache(directory: flaky, registryName: "switchable", logger: Logger(label: "test"))
        let node = RegistryConformance.node("upper", address: "127.0.0.1:9")
        try await self.registry.register(node)
        #expect(await cache.refresh())
        flaky.outage.down.withLock { $0 = true }
        #expect(await cache.refresh() == false)
        #expect(cache.isStale)
        #expect(cache.instances(of: "upper").map(\.id) == [node.id])
        // Long into the outage (past the node's TTL, when nobody could heartbeat) the last
        // good copy still routes: expiry is judged when the registry last answered.
        #expect(cache.instances(of: "upper", now: Date().addingTimeInterval(60)).map(\.id) == [node.id])
        flaky.outage.down.withLock { $0 = false }
        #expect(await cache.refresh())
        #expect(!cache.isStale)
    }
}

/// Stages an outage of a real registry's roles: every call fails while `down` is set.
final class Outage: Sendable {
    let down = Mutex(false)

    func check() throws {
        if self.down.withLock({ $0 }) { throw SkyError(.registry, "registry is down (test)", retryable: true) }
    }
}

/// A real registry's node directory that can be made to fail (all the cache calls).
final class SwitchableNodes: NodeDirectory {
    let base: any NodeDirectory
    let outage = Outage()

    init(_ base: any NodeDirectory) { self.base = base }

    func register(_ node: NodeRecord) async throws { try self.outage.check(); try await self.base.register(node) }
    func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try self.outage.check()
        return try await self.base.heartbeat(nodeID: nodeID, status: status, stats: stats, at: at)
    }
    func deregister(nodeID: String) async throws { try self.outage.check(); try await self.base.deregister(nodeID: nodeID) }
    func nodes() async throws -> [NodeRecord] { try self.outage.check(); return try await self.base.nodes() }
    func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try self.outage.check()
        return try await self.base.reap(nodeID: nodeID, heartbeatBefore: before)
    }
}

/// A real registry's span store that can be made to fail (all the span recorder calls).
final class SwitchableSpans: SpanStore {
    let base: any SpanStore
    let outage = Outage()

    init(_ base: any SpanStore) { self.base = base }

    func recordSpans(_ spans: [Span]) async throws { try self.outage.check(); try await self.base.recordSpans(spans) }
    func spans(traceID: String) async throws -> [Span] { try self.outage.check(); return try await self.base.spans(traceID: traceID) }
    func latestRouteSpans(limit: Int) async throws -> [Span] { try self.outage.check(); return try await self.base.latestRouteSpans(limit: limit) }
}

struct RegistryCacheChangesTests {
    @Test func aQuerySeesItsNodesAddedChangedAndRemoved() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-watch-\(UUID().uuidString)/r.sqlite")
        let cache = RegistryCache(directory: registry, registryName: registry.displayName, logger: Logger(label: "test"))
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
