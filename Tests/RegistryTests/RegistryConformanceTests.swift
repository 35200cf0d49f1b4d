import Foundation
import Testing

import SkyLib
import RouteModel
@testable import RegistryKit
@testable import RegistrySQLite
@testable import RegistryMongo
import RegistryMemory

/// The registry backends, each a real instance: a SQLite file, a database on the MongoDB-wire
/// server `scripts/services.sh up` starts (nx-27017), and the in-memory one.
enum Backend: String, CaseIterable, Sendable {
    case sqlite, mongodb, memory

    static var mongoServer: String {
        ProcessInfo.processInfo.environment["SKYNET_TEST_MONGODB"] ?? "mongodb://127.0.0.1:27017"
    }

    /// Two handles on one fresh store, as two processes would have.
    func twoHandles() async throws -> (any Registry, any Registry) {
        let first = try await self.registry()
        switch self {
        case .sqlite: return (first, try SQLiteRegistry(path: (first as! SQLiteRegistry).path))
        case .mongodb: return (first, try await MongoRegistry(uri: first.displayName))
        // One process's memory: both "processes" share the one instance.
        case .memory: return (first, first)
        }
    }

    /// A fresh, empty registry of this backend.
    func registry() async throws -> any Registry {
        switch self {
        case .sqlite:
            return try SQLiteRegistry(path: NSTemporaryDirectory() + "sky-sqlite-\(UUID().uuidString)/nested/registry.sqlite")
        case .mongodb:
            do {
                return try await MongoRegistry(uri: "\(Self.mongoServer)/skytest_\(UUID().uuidString.prefix(8).lowercased())")
            } catch {
                Issue.record("no MongoDB-wire server at \(Self.mongoServer): start one with scripts/services.sh up (\(error))")
                throw error
            }
        case .memory:
            return MemoryRegistry()
        }
    }
}

/// One conformance suite, the same assertions, on every backend.
struct RegistryConformanceTests {
    @Test(arguments: Backend.allCases)
    func registersListsAndDeregisters(_ backend: Backend) async throws {
        try await RegistryConformance.registersListsAndDeregisters(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func spans(_ backend: Backend) async throws {
        try await RegistryConformance.spansAreStoredAndReadByTrace(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func dedupe(_ backend: Backend) async throws {
        let (first, second) = try await backend.twoHandles()
        try await RegistryConformance.dedupeClaimsAreExclusiveAndExpire(first, second)
    }

    @Test(arguments: Backend.allCases)
    func counts(_ backend: Backend) async throws {
        let (first, second) = try await backend.twoHandles()
        try await RegistryConformance.countsMergeAsAGCounter(first, second)
    }

    @Test(arguments: Backend.allCases)
    func heartbeats(_ backend: Backend) async throws {
        try await RegistryConformance.heartbeatsUpdateAndReportMissingRecords(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func restartReplacesStaleRecord(_ backend: Backend) async throws {
        try await RegistryConformance.aRestartOnTheSameAddressReplacesTheStaleRecord(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func reapIsConditional(_ backend: Backend) async throws {
        try await RegistryConformance.reapRemovesOnlyStillExpiredNodes(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func events(_ backend: Backend) async throws {
        try await RegistryConformance.eventsAreKeptNewestFirst(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func leases(_ backend: Backend) async throws {
        try await RegistryConformance.leasesHaveOneHolderAtATime(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func routes(_ backend: Backend) async throws {
        try await RegistryConformance.routesAreStoredWithRevisions(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func commands(_ backend: Backend) async throws {
        try await RegistryConformance.commandsAreClaimedOnceAndFinishedOnce(backend.registry())
    }

    @Test(arguments: Backend.allCases)
    func racingClaims(_ backend: Backend) async throws {
        let (first, second) = try await backend.twoHandles()
        try await RegistryConformance.racingClaimersEachGetDistinctCommands(first, second)
    }

    @Test(arguments: Backend.allCases)
    func failedItems(_ backend: Backend) async throws {
        let (first, second) = try await backend.twoHandles()
        try await RegistryConformance.failedItemsAreRecordedListedAndMovedOnce(first, second)
    }
}
