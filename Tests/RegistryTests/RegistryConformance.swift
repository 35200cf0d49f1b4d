import Foundation
import Testing

import SkyLib
import RouteModel
@testable import RegistryKit

/// The behaviour every ``Registry`` backend must have. Each backend's suite runs all of these
/// against a real instance of that backend, with the same assertions.
enum RegistryConformance {
    static func node(_ service: String, address: String, heartbeatAgo: TimeInterval = 0, status: NodeStatus = .ready) -> NodeRecord {
        NodeRecord(
            kind: .service, service: service, version: "1.2.0", region: "eu", host: "h1", address: address,
            heartbeatAt: Date().addingTimeInterval(-heartbeatAgo), status: status, ttl: 3, stats: ["processed": 5]
        )
    }

    static func registersListsAndDeregisters(_ registry: any Registry) async throws {
        let a = node("alpha", address: "127.0.0.1:1001")
        let b = node("beta", address: "127.0.0.1:1002")
        try await registry.register(a)
        try await registry.register(b)
        let nodes = try await registry.nodes()
        #expect(Set(nodes.map(\.id)) == [a.id, b.id])
        let stored = try #require(nodes.first { $0.id == a.id })
        #expect(stored.service == "alpha" && stored.version == "1.2.0" && stored.region == "eu" && stored.host == "h1")
        #expect(stored.address == "127.0.0.1:1001" && stored.status == .ready && stored.ttl == 3 && stored.stats == ["processed": 5])
        #expect(abs(stored.heartbeatAt.timeIntervalSince(a.heartbeatAt)) < 0.01)
        #expect(try await registry.nodes(matching: NodeQuery(service: "beta")).map(\.id) == [b.id])
        #expect(try await registry.nodes(matching: NodeQuery(version: "1.*")).count == 2)
        #expect(try await registry.nodes(matching: NodeQuery(region: "us")).isEmpty)
        try await registry.deregister(nodeID: a.id)
        #expect(try await registry.nodes().map(\.id) == [b.id])
    }

    static func heartbeatsUpdateAndReportMissingRecords(_ registry: any Registry) async throws {
        let a = node("alpha", address: "127.0.0.1:1011", heartbeatAgo: 10)
        try await registry.register(a)
        let now = Date()
        #expect(try await registry.heartbeat(nodeID: a.id, status: .draining, stats: ["processed": 9], at: now))
        let stored = try #require(try await registry.nodes().first { $0.id == a.id })
        #expect(stored.status == .draining && stored.stats == ["processed": 9])
        #expect(abs(stored.heartbeatAt.timeIntervalSince(now)) < 0.01)
        #expect(try await registry.heartbeat(nodeID: "no-such-node", status: .ready, stats: [:], at: now) == false)
    }

    static func aRestartOnTheSameAddressReplacesTheStaleRecord(_ registry: any Registry) async throws {
        let old = node("alpha", address: "127.0.0.1:1021", heartbeatAgo: 1)
        try await registry.register(old)
        let restarted = node("alpha", address: "127.0.0.1:1021")
        try await registry.register(restarted)
        #expect(try await registry.nodes().filter { $0.address == "127.0.0.1:1021" }.map(\.id) == [restarted.id])
    }

    static func reapRemovesOnlyStillExpiredNodes(_ registry: any Registry) async throws {
        let dead = node("alpha", address: "127.0.0.1:1031", heartbeatAgo: 10)
        try await registry.register(dead)
        // It heartbeats just before the reaper acts: it must survive.
        let cutoff = Date().addingTimeInterval(-3)
        _ = try await registry.heartbeat(nodeID: dead.id, status: .ready, stats: [:], at: Date())
        #expect(try await registry.reap(nodeID: dead.id, heartbeatBefore: cutoff) == false)
        _ = try await registry.heartbeat(nodeID: dead.id, status: .ready, stats: [:], at: Date().addingTimeInterval(-10))
        #expect(try await registry.reap(nodeID: dead.id, heartbeatBefore: cutoff))
        #expect(try await registry.nodes().isEmpty)
    }

    static func eventsAreKeptNewestFirst(_ registry: any Registry) async throws {
        for index in 1...3 {
            try await registry.record(RegistryEvent(kind: "reaped", nodeID: "n\(index)", service: "alpha", message: "event \(index)"))
        }
        let events = try await registry.events(limit: 2)
        #expect(events.map(\.message) == ["event 3", "event 2"])
        #expect(events[0].kind == "reaped" && events[0].nodeID == "n3" && events[0].service == "alpha")
    }

    static func spansAreStoredAndReadByTrace(_ registry: any Registry) async throws {
        // Recent: MongoDB expires spans a day after they started.
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded() + 0.25)
        let root = Span(traceID: "t1", spanID: "a", parentID: nil, kind: .route, name: "text", route: "text", recorder: "router-1", host: "h", start: start, duration: 0.012)
        let call = Span(
            traceID: "t1", spanID: "b", parentID: "a", kind: .call, name: "uppercase", route: "text", recorder: "router-1", host: "h",
            instance: "node-9", address: "127.0.0.1:4001", attempt: 2, start: start.addingTimeInterval(0.001), duration: 0.003, error: "boom"
        )
        let other = Span(traceID: "t2", spanID: "c", parentID: nil, kind: .route, name: "x", route: "x", recorder: "r", host: "h", start: start, duration: 1)
        try await registry.recordSpans([call, other])
        try await registry.recordSpans([root])
        // Dates go through a Double of seconds since 1970: equal to the microsecond.
        func normalised(_ span: Span) -> Span {
            var span = span
            span.start = Date(timeIntervalSince1970: (span.start.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
            return span
        }
        let spans = try await registry.spans(traceID: "t1")
        #expect(spans.map(normalised) == [root, call].map(normalised))
        #expect(try await registry.spans(traceID: "nope").isEmpty)
        // The latest requests: route spans only, newest first.
        let newest = Span(traceID: "t3", spanID: "d", parentID: nil, kind: .route, name: "y", route: "y", recorder: "r", host: "h", start: start.addingTimeInterval(2), duration: 0.5)
        try await registry.recordSpans([newest])
        let latest = try await registry.latestRouteSpans(limit: 2)
        #expect(latest.map(\.traceID).first == "t3" && latest.count == 2 && latest.allSatisfy { $0.kind == .route })
        #expect(try await registry.latestRouteSpans(limit: 10).map(\.traceID).sorted() == ["t1", "t2", "t3"])
    }

    /// Two routers claim one key: one runs, the other sees it running, then its answer;
    /// a released claim, a claim whose runner died and an expired answer can be claimed again.
    static func dedupeClaimsAreExclusiveAndExpire(_ first: any Registry, _ second: any Registry) async throws {
        let now = Date()
        func claim(_ registry: any Registry, _ key: String, _ owner: String, at: Date = now, window: Double = 60, running: Double = 10) async throws -> DedupeClaim {
            try await registry.claimDedupe(route: "orders", key: key, owner: owner, now: at, expiresAt: at.addingTimeInterval(window), runningUntil: at.addingTimeInterval(running))
        }
        #expect(try await claim(first, "o-1", "a") == .claimed)
        #expect(try await claim(second, "o-1", "b") == .running(owner: "a"))
        try await first.completeDedupe(route: "orders", key: "o-1", owner: "a", answer: ["payload": ["ok": true]])
        #expect(try await claim(second, "o-1", "b") == .done(["payload": ["ok": true]]))
        // Another route's key of the same name is another key.
        #expect(try await second.claimDedupe(route: "refunds", key: "o-1", owner: "b", now: now, expiresAt: now.addingTimeInterval(60), runningUntil: now.addingTimeInterval(10)) == .claimed)
        // Released (the run failed): the next request runs.
        #expect(try await claim(first, "o-2", "a") == .claimed)
        try await first.releaseDedupe(route: "orders", key: "o-2", owner: "a")
        #expect(try await claim(second, "o-2", "b") == .claimed)
        // Only its owner completes or releases a claim.
        try await first.releaseDedupe(route: "orders", key: "o-2", owner: "a")
        #expect(try await claim(first, "o-2", "c") == .running(owner: "b"))
        // The runner died: past its runningUntil the claim is free.
        #expect(try await claim(first, "o-3", "a", running: 5) == .claimed)
        #expect(try await claim(second, "o-3", "b", at: now.addingTimeInterval(6)) == .claimed)
        // A claim renewed by its owner outlives its first runningUntil; only the owner of a
        // running claim renews it (a lost or finished claim says so).
        #expect(try await claim(first, "o-4", "a", running: 5) == .claimed)
        #expect(try await first.renewDedupe(route: "orders", key: "o-4", owner: "a", runningUntil: now.addingTimeInterval(20)))
        #expect(try await claim(second, "o-4", "b", at: now.addingTimeInterval(6)) == .running(owner: "a"))
        #expect(try await second.renewDedupe(route: "orders", key: "o-4", owner: "b", runningUntil: now.addingTimeInterval(60)) == false)
        #expect(try await claim(second, "o-4", "b", at: now.addingTimeInterval(21)) == .claimed)
        #expect(try await first.renewDedupe(route: "orders", key: "o-4", owner: "a", runningUntil: now.addingTimeInterval(60)) == false)
        // An answer past its window is forgotten.
        try await second.completeDedupe(route: "orders", key: "o-3", owner: "b", answer: ["payload": 1])
        let kept = try await claim(first, "o-3", "c", at: now.addingTimeInterval(30))
        #expect(kept == .done(["payload": 1]), "\(kept)")
        #expect(try await claim(first, "o-3", "c", at: now.addingTimeInterval(120)) == .claimed)
    }

    /// Two processes write counts: per node the larger value stays, a write read twice or late
    /// changes nothing, and the total is the sum over nodes.
    static func countsMergeAsAGCounter(_ first: any Registry, _ second: any Registry) async throws {
        let now = Date()
        try await first.mergeCounts(nodeID: "router-a", counts: ["route.text-processed": 5, "route.text-errors": 1], at: now)
        try await second.mergeCounts(nodeID: "router-b", counts: ["route.text-processed": 7], at: now)
        // The same write again, and an older one late: no change.
        try await first.mergeCounts(nodeID: "router-a", counts: ["route.text-processed": 5], at: now)
        try await second.mergeCounts(nodeID: "router-a", counts: ["route.text-processed": 3], at: now)
        var counts = try await first.counts()
        #expect(counts.total("route.text-processed") == 12 && counts.nodes("route.text-processed") == 2)
        #expect(counts.total("route.text-errors") == 1)
        // Grows.
        try await second.mergeCounts(nodeID: "router-a", counts: ["route.text-processed": 9], at: now)
        counts = try await second.counts()
        #expect(counts.total("route.text-processed") == 16)
        #expect(counts.names == ["route.text-errors", "route.text-processed"])
    }

    static func concurrentWritersAllLand(_ first: any Registry, _ second: any Registry) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                let registry = index.isMultiple(of: 2) ? first : second
                group.addTask { try await registry.register(node("s\(index % 4)", address: "127.0.0.1:\(2000 + index)")) }
            }
            try await group.waitForAll()
        }
        #expect(try await first.nodes().count == 40)
        #expect(try await second.nodes().count == 40)
    }

    static func leasesHaveOneHolderAtATime(_ registry: any Registry) async throws {
        let now = Date()
        #expect(try await registry.acquireLease("reaper", holder: "a", duration: 3, now: now))
        #expect(try await registry.acquireLease("reaper", holder: "b", duration: 3, now: now.addingTimeInterval(1)) == false)
        // The holder renews.
        #expect(try await registry.acquireLease("reaper", holder: "a", duration: 3, now: now.addingTimeInterval(2)))
        #expect(try await registry.acquireLease("reaper", holder: "b", duration: 3, now: now.addingTimeInterval(4)) == false)
        // Expired: another takes over, and the old holder is out.
        #expect(try await registry.acquireLease("reaper", holder: "b", duration: 3, now: now.addingTimeInterval(5.5)))
        #expect(try await registry.acquireLease("reaper", holder: "a", duration: 3, now: now.addingTimeInterval(6)) == false)
        // Leases are independent by name.
        #expect(try await registry.acquireLease("other", holder: "a", duration: 3, now: now))
    }

    static func routesAreStoredWithRevisions(_ registry: any Registry) async throws {
        var stored = try await registry.storeRoutes(
            [StoredRoute(name: "a", yaml: "name: a", file: "a.yaml"), StoredRoute(name: "b", yaml: "name: b", file: "b.yaml")], prune: false
        )
        #expect(stored.map(\.name) == ["a", "b"] && stored.map(\.revision) == [1, 1])
        stored = try await registry.storeRoutes([StoredRoute(name: "a", yaml: "name: a # changed", file: "a.yaml"), StoredRoute(name: "b", yaml: "name: b", file: "b.yaml")], prune: false)
        #expect(stored.map(\.revision) == [2, 1])
        #expect(stored.first?.yaml == "name: a # changed")
        stored = try await registry.storeRoutes([StoredRoute(name: "b", yaml: "name: b", file: "b.yaml")], prune: true)
        #expect(stored.map(\.name) == ["b"])
        #expect(try await registry.storedRoutes().map(\.name) == ["b"])
    }

    static func commandsAreClaimedOnceAndFinishedOnce(_ registry: any Registry) async throws {
        let now = Date()
        let stop = NodeCommand(action: .stop, target: "node-a", issuedBy: "test", issuedAt: now)
        let unregister = NodeCommand(action: .unregister, target: "node-a", issuedBy: "test", issuedAt: now)
        let deploy = NodeCommand(action: .deploy, target: "daemon-1", arguments: ["service": "uppercase", "instances": "2"], issuedBy: "test", issuedAt: now)
        let stale = NodeCommand(action: .stop, target: "node-a", issuedBy: "test", issuedAt: now.addingTimeInterval(-60), expiresIn: 30)
        try await registry.sendCommands([stop, unregister, deploy, stale])

        // Only the asked actions, only the asked targets, never an expired command.
        let claimed = try await registry.claimCommands(targets: ["node-a"], actions: [.stop], actor: "node-a", now: now)
        #expect(claimed.map(\.id) == [stop.id])
        #expect(claimed.first?.state == .acknowledged && claimed.first?.actor == "node-a")
        // Claimed once: a second claim gets nothing.
        #expect(try await registry.claimCommands(targets: ["node-a"], actions: [.stop], actor: "other", now: now).isEmpty)

        let forDaemon = try await registry.claimCommands(targets: ["daemon-1", "node-b"], actions: Set(NodeCommand.Action.allCases), actor: "daemon-1", now: now)
        #expect(forDaemon.map(\.id) == [deploy.id])
        #expect(forDaemon.first?.arguments == ["service": "uppercase", "instances": "2"])

        // Finishing moves only from the expected state.
        #expect(try await registry.updateCommand(id: stop.id, from: .acknowledged, to: .done, result: "drained", now: now))
        #expect(try await registry.updateCommand(id: stop.id, from: .acknowledged, to: .failed, result: "again", now: now) == false)
        // The issuer gives up on a pending command: it can no longer be claimed.
        #expect(try await registry.updateCommand(id: unregister.id, from: .pending, to: .expired, result: "nobody", now: now))
        #expect(try await registry.claimCommands(targets: ["node-a"], actions: [.unregister], actor: "node-a", now: now).isEmpty)

        let stored = Dictionary(uniqueKeysWithValues: try await registry.commands(ids: [stop.id, unregister.id, stale.id, "nope"]).map { ($0.id, $0) })
        #expect(stored.count == 3)
        #expect(stored[stop.id]?.state == .done && stored[stop.id]?.result == "drained" && stored[stop.id]?.issuedBy == "test")
        #expect(stored[unregister.id]?.state == .expired)
        #expect(stored[stale.id]?.state == .pending)
        #expect(abs((stored[stop.id]?.expiresAt.timeIntervalSince(now) ?? 0) - 30) < 0.01)
    }

    /// Several processes claim at once (two handles on one store): each command goes to
    /// exactly one of them.
    static func racingClaimersEachGetDistinctCommands(_ first: any Registry, _ second: any Registry) async throws {
        let commands = (0..<40).map { index in NodeCommand(action: .stop, target: "node-\(index % 4)", issuedBy: "race") }
        try await first.sendCommands(commands)
        let targets = (0..<4).map { "node-\($0)" }
        let claims = try await withThrowingTaskGroup(of: [NodeCommand].self) { group in
            for (index, registry) in [first, second, first, second].enumerated() {
                group.addTask {
                    var mine: [NodeCommand] = []
                    for _ in 0..<5 {
                        mine += try await registry.claimCommands(targets: targets, actions: [.stop], actor: "claimer-\(index)", now: Date())
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claims.count == commands.count)
        #expect(Set(claims.map(\.id)) == Set(commands.map(\.id)))
        let stored = try await first.commands(ids: commands.map(\.id))
        #expect(stored.allSatisfy { $0.state == .acknowledged })
        // Every stored actor is the one whose claim returned that command.
        let actors = Dictionary(uniqueKeysWithValues: claims.map { ($0.id, $0.actor) })
        #expect(stored.allSatisfy { actors[$0.id] == $0.actor })
    }

    /// Failed items: recorded and listed with filters (latest first); the same input failing
    /// again is the same item with one attempt more; a move happens only from the state the
    /// mover saw, so of two racing operators (on two handles) exactly one redrives an item.
    static func failedItemsAreRecordedListedAndMovedOnce(_ first: any Registry, _ second: any Registry) async throws {
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let row = FailedItem.stableID(route: "orders", source: .csv, resource: "drop/orders", key: "a.csv:7")
        #expect(row == FailedItem.stableID(route: "orders", source: .csv, resource: "drop/orders", key: "a.csv:7"))
        #expect(row != FailedItem.stableID(route: "orders", source: .csv, resource: "drop/orders", key: "a.csv:8"))
        let items = [
            FailedItem(
                id: row, route: "orders", source: .csv, resource: "drop/orders", input: Array("7,bad".utf8),
                details: ["file": "a.csv", "line": "7", "header": #"["id","total"]"#], code: "step_failed", message: "step 1 (bill) failed", step: 0,
                service: "bill", traceID: "abc", node: "node-1", failedAt: start
            ),
            FailedItem(route: "orders", source: .stomp, resource: "/queue/orders", input: Array(#"{"id":1}"#.utf8), code: "rejected", message: "no", node: "node-1", failedAt: start + 1),
            FailedItem(route: "text", source: .http, resource: "http", input: [UInt8](repeating: 65, count: FailedItem.inputLimit + 1), code: "step_failed", message: "big", node: "node-2", failedAt: start + 2),
        ]
        try await first.recordFailed(items)
        var listed = try await second.failedItems(FailedQuery(), limit: 10)
        #expect(listed.map(\.id) == items.reversed().map(\.id))
        #expect(listed.last == items[0])
        #expect(listed.first?.input == nil && listed.first?.inputBytes == FailedItem.inputLimit + 1, "an input over the limit is kept without its text")
        #expect(try await second.failedItems(FailedQuery(route: "orders"), limit: 10).count == 2)
        #expect(try await second.failedItems(FailedQuery(source: .stomp), limit: 10).map(\.id) == [items[1].id])
        #expect(try await second.failedItems(FailedQuery(code: "rejected"), limit: 10).count == 1)
        #expect(try await second.failedItems(FailedQuery(since: start + 1), limit: 10).count == 2)
        #expect(try await second.failedItems(FailedQuery(ids: [row]), limit: 10).map(\.id) == [row])
        #expect(try await second.failedItems(FailedQuery(), limit: 1).count == 1)

        // Two operators redrive the same item at once: exactly one wins.
        let moves = try await withThrowingTaskGroup(of: FailedItem?.self) { group in
            for (index, registry) in [first, second, first, second].enumerated() {
                group.addTask {
                    try await registry.moveFailed(id: row, from: [.failed], updatedBefore: nil, to: .redrive, actor: "op-\(index)", note: "", now: Date())
                }
            }
            return try await group.reduce(into: [FailedItem]()) { if let moved = $1 { $0.append(moved) } }
        }
        #expect(moves.count == 1)
        #expect(try await first.failedItems(FailedQuery(ids: [row]), limit: 1).first?.actor == moves.first?.actor)
        #expect(try await first.failedItems(FailedQuery(states: [.redrive]), limit: 10).map(\.id) == [row])
        // A move from a state the item is not in, or too recent for `updatedBefore`, does nothing.
        #expect(try await second.moveFailed(id: row, from: [.failed], updatedBefore: nil, to: .dropped, actor: "late", note: "", now: Date()) == nil)
        #expect(try await second.moveFailed(id: row, from: [.redrive], updatedBefore: start, to: .running, actor: "node", note: "", now: Date()) == nil)
        let running = try await second.moveFailed(id: row, from: [.redrive], updatedBefore: nil, to: .running, actor: "node-1", note: "", now: Date())
        #expect(running?.state == .running && running?.actor == "node-1")

        // The redriven input fails again: the same item, one attempt more, failed once more.
        var again = items[0]
        again.message = "step 1 (bill) failed again"
        again.failedAt = start + 10
        try await second.recordFailed([again])
        let stored = try #require(try await first.failedItems(FailedQuery(ids: [row]), limit: 1).first)
        #expect(stored.attempts == 2 && stored.state == .failed && stored.message == "step 1 (bill) failed again")
        #expect(stored.details["line"] == "7" && stored.input == "7,bad")

        let dropped = try await first.moveFailed(id: items[1].id, from: [.failed], updatedBefore: nil, to: .dropped, actor: "alice", note: "duplicate order", now: Date())
        #expect(dropped?.note == "duplicate order")
        let dropsSeen = try await second.failedItems(FailedQuery(states: [.dropped], node: "node-1", updatedSince: start), limit: 10)
        #expect(dropsSeen.map(\.id) == [items[1].id])
        #expect(try await second.failedItems(FailedQuery(states: [.dropped], node: "node-2"), limit: 10).isEmpty)
        listed = try await first.failedItems(FailedQuery(states: [.failed]), limit: 10)
        #expect(Set(listed.map(\.id)) == [row, items[2].id])
        // Counted by the driver as the items say, without reading them.
        let counts = try await second.failedCounts(states: [.failed, .dropped])
        #expect(counts == FailedCount.counting(try await second.failedItems(FailedQuery(states: [.failed, .dropped]), limit: 100)))
        #expect(counts.map { "\($0.route) \($0.source.rawValue) \($0.state.rawValue) \($0.count)" } == [
            "orders csv failed 1", "orders stomp dropped 1", "text http failed 1",
        ])

        // Done or dropped over a week ago: pruned at the next record; open items stay however old.
        let old = FailedItem(route: "text", source: .http, resource: "http", input: nil, code: "x", message: "old", node: "node-1", failedAt: start - 30 * 86400)
        try await first.recordFailed([old])
        _ = try await first.moveFailed(id: old.id, from: [.failed], updatedBefore: nil, to: .done, actor: "node-1", note: "", now: start - 8 * 86400)
        let ancient = FailedItem(route: "text", source: .http, resource: "http", input: nil, code: "x", message: "open", node: "node-1", failedAt: start - 30 * 86400)
        try await first.recordFailed([ancient])
        let kept = Set(try await second.failedItems(FailedQuery(route: "text"), limit: 10).map(\.id))
        #expect(!kept.contains(old.id) && kept.contains(ancient.id) && kept.contains(items[2].id))
    }
}
