import Foundation
import Testing

@testable import SkyLib

/// What only the MongoDB backend has to show (the shared behaviour is in
/// `RegistryConformanceTests`), against the real MongoDB-wire server.
struct MongoRegistryTests {
    @Test func twoClientsShareOneDatabase() async throws {
        let first = try await Backend.mongodb.registry()
        let second = try await MongoRegistry(uri: first.displayName)
        try await RegistryConformance.concurrentWritersAllLand(first, second)
    }

    /// Processes may start while the registry is down; calls then fail fast and clearly.
    @Test func anUnreachableServerFailsFastWithARegistryError() async throws {
        let registry = try await MongoRegistry(uri: "mongodb://127.0.0.1:1/nothing?serverSelectionTimeoutMS=300")
        await #expect {
            _ = try await registry.nodes()
        } throws: { error in
            (error as? SkyError)?.code == .registry
        }
    }
}
