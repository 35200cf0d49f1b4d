import Foundation
import Logging
import RegistryKit
import RegistryMemory
import RouteModel
import SkyLib
import Testing

@testable import NodeRuntime

/// The node's buffer of failed inputs (the end-to-end `FailedWorkTests` run it against the real
/// SQLite registry): reports wait while the registry is away, at most `bufferLimit` of them,
/// the oldest given up and counted beyond that, and all the others written once it is back.
@Suite(.timeLimit(.minutes(1)))
struct FailedWorkBufferTests {
    /// A store that is down until told otherwise.
    final class Store: FailedStore {
        let memory = MemoryRegistry()
        let down = Locked(true)

        func check() throws {
            if self.down.withLock({ $0 }) { throw SkyError(.registry, "down (test)") }
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

    @Test func reportsWaitForTheRegistryAndTheOldestBeyondTheLimitAreCounted() async throws {
        let store = Store()
        let counters = Counters()
        let work = FailedWork(store: store, nodeID: "node-1", counters: counters, runner: nil, bufferLimit: 3, logger: Logger(label: "test"))
        for index in 0..<5 {
            work.failed(FailedInput(
                route: "orders", source: .files, resource: "drop", identity: .stable("f\(index).json"), input: Array("{}".utf8),
                details: ["file": "f\(index).json"], error: SkyError(.stepFailed, "no")
            ))
        }
        #expect(counters.value("failed-unrecorded") == 2)
        await work.flush()  // the registry is down: kept for later
        #expect(try await store.memory.failedItems(FailedQuery(), limit: 10).isEmpty)
        store.down.withLock { $0 = false }
        await work.flush()
        let files = try await store.memory.failedItems(FailedQuery(), limit: 10).compactMap { $0.details["file"] }
        #expect(Set(files) == ["f2.json", "f3.json", "f4.json"])
        #expect(counters.value("failed-recorded") == 5)
    }
}
