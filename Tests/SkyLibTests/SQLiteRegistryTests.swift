import Foundation
import Testing

@testable import SkyLib

/// The conformance suite on the embedded backend, each test on its own file.
struct SQLiteRegistryTests {
    let folder: String

    init() throws {
        self.folder = NSTemporaryDirectory() + "sky-sqlite-\(UUID().uuidString)"
    }

    func registry() throws -> SQLiteRegistry {
        try SQLiteRegistry(path: self.folder + "/nested/registry.sqlite")
    }

    @Test func registersListsAndDeregisters() async throws { try await RegistryConformance.registersListsAndDeregisters(self.registry()) }
    @Test func heartbeats() async throws { try await RegistryConformance.heartbeatsUpdateAndReportMissingRecords(self.registry()) }
    @Test func restartReplacesStaleRecord() async throws { try await RegistryConformance.aRestartOnTheSameAddressReplacesTheStaleRecord(self.registry()) }
    @Test func reapIsConditional() async throws { try await RegistryConformance.reapRemovesOnlyStillExpiredNodes(self.registry()) }
    @Test func events() async throws { try await RegistryConformance.eventsAreKeptNewestFirst(self.registry()) }
    @Test func leases() async throws { try await RegistryConformance.leasesHaveOneHolderAtATime(self.registry()) }
    @Test func routes() async throws { try await RegistryConformance.routesAreStoredWithRevisions(self.registry()) }

    /// Two handles on one file behave like two processes sharing the registry.
    @Test func twoHandlesShareOneFile() async throws {
        try await RegistryConformance.concurrentWritersAllLand(self.registry(), self.registry())
    }

    @Test func addressesParse() throws {
        #expect(try RegistryAddress("sqlite:/tmp/x.sqlite") == .sqlite(path: "/tmp/x.sqlite"))
        #expect(try RegistryAddress("mongodb://127.0.0.1:27017/sky") == .mongodb(uri: "mongodb://127.0.0.1:27017/sky"))
        #expect(throws: SkyError.self) { try RegistryAddress("redis://x") }
        #expect(throws: SkyError.self) { try RegistryAddress("sqlite:") }
        #expect(try RegistryAddress.resolve(flag: nil, environment: [:]) == .defaultAddress)
        #expect(try RegistryAddress.resolve(flag: nil, environment: ["SKYNET_REGISTRY": "sqlite:a"]) == .sqlite(path: "a"))
        #expect(try RegistryAddress.resolve(flag: "sqlite:b", environment: ["SKYNET_REGISTRY": "sqlite:a"]) == .sqlite(path: "b"))
        #expect(RegistryAddress.mongodb(uri: "mongodb://user:secret@h:1/db").description == "mongodb://***@h:1/db")
    }
}
