import AdminHTTP
import AsyncHTTPClient
import Foundation
import Glibc
import Logging
import RegistryKit
import RegistryMemory
import SkyLib
import RouteModel
import SkyTestSupport
import Synchronization
import Testing

@testable import Dashboard

/// The dashboard's watcher and server against routers that answer over real sockets (admin
/// servers with a `/debug/stats` of the test's choosing) and a registry in memory, and the
/// page asked by curl as a browser would.
@Suite(.timeLimit(.minutes(1)))
struct ClusterWatcherTests {
    /// A router's cumulative stats: one route `orders` with one step.
    static func stats(processed: Int64, errors: Int64, failures: [JSONValue] = []) -> JSONValue {
        [
            "routes": [[
                "route": "orders", "processed": .int(processed), "errors": .int(errors),
                "steps": [["service": "uppercase", "calls": .int(processed + errors), "errors": .int(errors), "retries": 0]],
            ]],
            "failures": .array(failures),
        ]
    }

    /// Serves `stats` as a router's admin endpoints until `body` returns; hands `body` the
    /// address.
    static func router(
        stats: Locked<JSONValue>, token: String? = nil, _ body: @escaping @Sendable (String) async throws -> Void
    ) async throws {
        let address = Locked<String?>(nil)
        let server = AdminServer(
            host: "127.0.0.1", port: 0, token: token, endpoints: AdminEndpoints(counters: Counters(), stats: { stats.withLock { $0 } }),
            eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "router-test"), onServerRunning: { listening in address.withLock { $0 = listening } }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            #expect(await eventually(within: 10) { address.withLock { $0 } != nil })
            try await body(try #require(address.withLock { $0 }))
            group.cancelAll()
        }
    }

    static func routerNode(at address: String) -> NodeRecord {
        NodeRecord(kind: .router, service: "sky-router", address: address, status: .ready, ttl: 3600)
    }

    /// A router seen for the first time shows its routes idle (not its whole history as one
    /// second's traffic); the next refresh shows the difference over the time between them,
    /// with errors over ended requests. A router that does not answer is named with its error
    /// and does not hide the others.
    @Test func ratesAreTheDifferenceBetweenRefreshesAndASilentRouterIsNamed() async throws {
        let registry = MemoryRegistry()
        let stats = Locked(Self.stats(processed: 1000, errors: 50))
        try await Self.router(stats: stats) { (address: String) async throws in
            try await registry.register(Self.routerNode(at: address))
            let silent = Self.routerNode(at: "127.0.0.1:1")
            try await registry.register(silent)
            let watcher = ClusterWatcher(registry: registry, registryName: "memory", token: nil, client: .shared, logger: Logger(label: "watcher-test"))

            await watcher.refresh()
            let first = watcher.current
            let idle = try #require(first.routes.first { $0.route == "orders" })
            #expect(idle.rates.perSecond == 0, "first sight: no interval yet")
            #expect(first.routers.contains { $0.address == address && $0.error == nil })
            #expect(first.routers.contains { $0.nodeID == silent.id && $0.error != nil })

            stats.withLock { $0 = Self.stats(processed: 1006, errors: 52) }
            await watcher.refresh()
            let second = try #require(watcher.current.routes.first { $0.route == "orders" })
            #expect(second.rates.perSecond > 0)
            #expect(second.rates.errorRate == 0.25, "2 failed of 8 ended")
            #expect(watcher.current.window > 0)
            #expect(watcher.current.nodes.count == 2)
        }
    }

    /// A router that hangs costs one timeout, not one per refresh: it is left alone for the
    /// quarantine (its row keeps the error), then asked again.
    @Test func aRouterThatHangsIsLeftAloneForTheQuarantineThenAskedAgain() async throws {
        let hanging = try HangingListener()
        defer { hanging.close() }
        let registry = MemoryRegistry()
        let router = Self.routerNode(at: "127.0.0.1:\(hanging.port)")
        try await registry.register(router)
        let watcher = ClusterWatcher(
            registry: registry, registryName: "memory", token: nil, quarantine: .seconds(3), client: .shared, logger: Logger(label: "watcher-test")
        )
        await watcher.refresh()
        // Its stats and its work in flight, side by side.
        let asked = hanging.accepted
        #expect(asked == 2, "the first refresh asks it")
        let first = try #require(watcher.current.routers.first { $0.nodeID == router.id }?.error)
        #expect(first.contains("not asked again for 3.0 s"))
        await watcher.refresh()
        // Had it been asked, this refresh would have waited out the 2 s timeout on a second
        // connection, long enough for it to be accepted.
        #expect(hanging.accepted == asked, "asked again inside the quarantine")
        #expect(watcher.current.routers.first { $0.nodeID == router.id }?.error == first, "the row keeps the error")
        #expect(await eventually(within: 15) {
            await watcher.refresh()
            return hanging.accepted > asked
        }, "not asked again after the quarantine")
    }

    /// The registry going away keeps the last nodes on the page and says why, instead of an
    /// empty cluster that looks like everything died.
    @Test func anUnreachableRegistryKeepsTheLastNodesAndSaysSo() async throws {
        let registry = FailingRegistry()
        try await registry.memory.register(NodeRecord(kind: .service, service: "uppercase", address: "127.0.0.1:2", status: .ready, ttl: 3600))
        let watcher = ClusterWatcher(registry: registry, registryName: "memory", token: nil, client: .shared, logger: Logger(label: "watcher-test"))
        await watcher.refresh()
        #expect(watcher.current.nodes.map(\.service) == ["uppercase"] && watcher.current.registryError == nil)
        registry.down.withLock { $0 = true }
        await watcher.refresh()
        #expect(watcher.current.nodes.map(\.service) == ["uppercase"])
        let error = try #require(watcher.current.registryError)
        #expect(error.contains("cannot read the nodes from memory"))
        #expect(DashboardPage.live(watcher.current).contains("registry unreachable: cannot read the nodes from memory"))
    }

    /// The page over a real socket: a browser is asked to log in (Basic, the token as password),
    /// `/health` stays open, and what the cluster says is escaped (a failure message carrying
    /// markup is shown as text, never run).
    @Test func thePageAsksToLogInAndEscapesWhatTheClusterSays() async throws {
        let registry = MemoryRegistry()
        let markup = "<img src=x onerror=alert(1)>"
        let failure: JSONValue = [
            "at": .double(Date().timeIntervalSince1970), "route": "orders", "step": 1, "service": "uppercase", "code": "service_error",
            "message": .string(markup), "traceId": "abc",
        ]
        let stats = Locked(Self.stats(processed: 1, errors: 1, failures: [failure]))
        try await Self.router(stats: stats, token: "s3cret") { (router: String) async throws in
            try await registry.register(Self.routerNode(at: router))
            let watcher = ClusterWatcher(registry: registry, registryName: "memory", token: "s3cret", client: .shared, logger: Logger(label: "watcher-test"))
            await watcher.refresh()
            let address = Locked<String?>(nil)
            let server = DashboardServer(
                host: "127.0.0.1", port: 0, token: "s3cret", watcher: watcher, admin: AdminEndpoints(counters: Counters()),
                eventLoopGroup: TestIO.eventLoopGroup, logger: Logger(label: "dashboard-test"), onServerRunning: { listening in address.withLock { $0 = listening } }
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                #expect(await eventually(within: 10) { address.withLock { $0 } != nil })
                let dashboard = try #require(address.withLock { $0 })

                let refused = try await Programs.curl("http://\(dashboard)/")
                #expect(refused.status == 401 && refused.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
                #expect(try await Programs.curl("http://\(dashboard)/health").status == 200)

                let page = try await Programs.curl("http://\(dashboard)/", ["-u", "anyone:s3cret"])
                #expect(page.status == 200 && page.headers["content-type"] == "text/html; charset=utf-8")
                #expect(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"))
                #expect(!page.body.contains(markup))

                let state = try await Programs.curl("http://\(dashboard)/api/state", ["-H", "Authorization: Bearer s3cret"])
                let json = try JSONParser.parse(Array(state.body.utf8))
                #expect(json["nodes"]?.arrayValue?.count == 1)
                #expect(json["registry"] == "memory")
                group.cancelAll()
            }
        }
    }
}

/// A registry in memory that can be made unreachable: every read and write fails while
/// ``down`` is set, as a driver's do when its server is gone.
final class FailingRegistry: NodeDirectory, EventLog, CountStore, FailedStore, Sendable {
    let memory = MemoryRegistry()
    let down = Locked(false)

    private func check() throws {
        if self.down.withLock({ $0 }) { throw SkyError(.registry, "the registry is down (test)") }
    }

    func register(_ node: NodeRecord) async throws {
        try self.check()
        try await self.memory.register(node)
    }

    func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try self.check()
        return try await self.memory.heartbeat(nodeID: nodeID, status: status, stats: stats, at: at)
    }

    func deregister(nodeID: String) async throws {
        try self.check()
        try await self.memory.deregister(nodeID: nodeID)
    }

    func nodes() async throws -> [NodeRecord] {
        try self.check()
        return try await self.memory.nodes()
    }

    func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try self.check()
        return try await self.memory.reap(nodeID: nodeID, heartbeatBefore: before)
    }

    func record(_ event: RegistryEvent) async throws {
        try self.check()
        try await self.memory.record(event)
    }

    func events(limit: Int) async throws -> [RegistryEvent] {
        try self.check()
        return try await self.memory.events(limit: limit)
    }

    func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws {
        try self.check()
        try await self.memory.mergeCounts(nodeID: nodeID, counts: counts, at: at)
    }

    func counts() async throws -> GCounter {
        try self.check()
        return try await self.memory.counts()
    }

    func recordFailed(_ items: [FailedItem]) async throws {
        try self.check()
        try await self.memory.recordFailed(items)
    }

    func failedItems(_ query: FailedQuery, limit: Int) async throws -> [FailedItem] {
        try self.check()
        return try await self.memory.failedItems(query, limit: limit)
    }

    func moveFailed(id: String, from: Set<FailedItem.State>, updatedBefore: Date?, to: FailedItem.State, actor: String, note: String, now: Date) async throws -> FailedItem? {
        try self.check()
        return try await self.memory.moveFailed(id: id, from: from, updatedBefore: updatedBefore, to: to, actor: actor, note: note, now: now)
    }

    func failedCounts(states: Set<FailedItem.State>) async throws -> [FailedCount] {
        try self.check()
        return try await self.memory.failedCounts(states: states)
    }
}

/// A TCP listener that accepts connections and never answers, counting them: a router that
/// hangs.
final class HangingListener: Sendable {
    let port: Int
    private let socket: Int32
    private let count = Locked<[Int32]>([])

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound, listen(socket, 16) == 0 else { throw SkyError(.internal, "cannot listen: \(errno)") }
        self.socket = socket
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let count = self.count
        Thread.detachNewThread {
            while true {
                let connection = accept(socket, nil, nil)
                if connection < 0 { return }
                count.withLock { $0.append(connection) }
            }
        }
    }

    /// Connections accepted so far.
    var accepted: Int { self.count.withLock { $0.count } }

    func close() {
        shutdown(self.socket, Int32(SHUT_RDWR))
        _ = Glibc.close(self.socket)
        for connection in self.count.withLock({ $0 }) { _ = Glibc.close(connection) }
    }
}
