import Foundation
import Testing

@testable import SkyLib

/// The conformance suite against a real MongoDB-wire server (nx-27017, started by
/// `scripts/services.sh up`, which `make test` runs). Each test gets its own database.
struct MongoRegistryTests {
    static var server: String {
        ProcessInfo.processInfo.environment["SKYNET_TEST_MONGODB"] ?? "mongodb://127.0.0.1:27017"
    }

    func registry() async throws -> MongoRegistry {
        do {
            return try await MongoRegistry(uri: "\(Self.server)/skytest_\(UUID().uuidString.prefix(8).lowercased())")
        } catch {
            Issue.record("no MongoDB-wire server at \(Self.server): start one with scripts/services.sh up (\(error))")
            throw error
        }
    }

    @Test func registersListsAndDeregisters() async throws { try await RegistryConformance.registersListsAndDeregisters(self.registry()) }
    @Test func heartbeats() async throws { try await RegistryConformance.heartbeatsUpdateAndReportMissingRecords(self.registry()) }
    @Test func restartReplacesStaleRecord() async throws { try await RegistryConformance.aRestartOnTheSameAddressReplacesTheStaleRecord(self.registry()) }
    @Test func reapIsConditional() async throws { try await RegistryConformance.reapRemovesOnlyStillExpiredNodes(self.registry()) }
    @Test func events() async throws { try await RegistryConformance.eventsAreKeptNewestFirst(self.registry()) }
    @Test func leases() async throws { try await RegistryConformance.leasesHaveOneHolderAtATime(self.registry()) }
    @Test func routes() async throws { try await RegistryConformance.routesAreStoredWithRevisions(self.registry()) }

    @Test func twoClientsShareOneDatabase() async throws {
        let first = try await self.registry()
        let second = try await MongoRegistry(uri: first.displayName)
        try await RegistryConformance.concurrentWritersAllLand(first, second)
    }

    @Test func anUnreachableServerFailsFastWithARegistryError() async throws {
        let registry = try await MongoRegistry(uri: "mongodb://127.0.0.1:1/nothing?serverSelectionTimeoutMS=300")
        await #expect {
            _ = try await registry.nodes()
        } throws: { error in
            (error as? SkyError)?.code == .registry
        }
    }
}
