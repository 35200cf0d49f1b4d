import Foundation
import Testing

import SkyLib
import RouteModel
@testable import RegistryMongo
@testable import RegistryKit

/// What only the MongoDB backend has to show (the shared behaviour is in
/// `RegistryConformanceTests`), against the real MongoDB-wire server.
struct MongoRegistryTests {
    @Test func twoClientsShareOneDatabase() async throws {
        let first = try await Backend.mongodb.registry()
        let second = try await MongoRegistry(uri: first.displayName)
        try await RegistryConformance.concurrentWritersAllLand(first, second)
    }

    /// A shut registry has destroyed its libmongoc pool (its monitor threads end before the
    /// process's exit handlers run); shutting it twice frees nothing twice, and later calls fail
    /// with a registry error instead of reaching freed memory.
    @Test func aShutRegistryFreesItsPoolOnceAndRefusesLaterCalls() async throws {
        let registry = try await Backend.mongodb.registry()
        guard let mongo = registry as? MongoRegistry else { throw SkyError(.registry, "expected the MongoDB driver") }
        _ = try await mongo.nodes()
        #expect(!mongo.pool.isDestroyed)
        await mongo.shutdown()
        #expect(mongo.pool.isDestroyed)
        await mongo.shutdown()
        await #expect {
            _ = try await mongo.nodes()
        } throws: { error in
            (error as? SkyError)?.code == .registry
        }
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

/// High availability: replica-set URIs (several hosts, options) are accepted as they are and
/// handed to libmongoc, which follows the primary through failovers.
struct MongoReplicaSetAddressTests {
    @Test func severalHostsAndOptionsAreAccepted() throws {
        let uri = "mongodb://db1.example:27017,db2.example:27017,db3.example:27018/skynet_prod?replicaSet=rs0&retryWrites=true&w=majority&readPreference=primaryPreferred"
        #expect(try RegistryAddress(uri) == .mongodb(uri: uri))
        let pool = try MongoClientPool(uriString: uri)
        #expect(pool.database == "skynet_prod")
        // Credentials in such a URI: kept off the command line and out of logs.
        let secret = "mongodb://sky:s3cret@db1.example,db2.example/skynet?replicaSet=rs0"
        #expect(RegistryAddress.mongodb(uri: secret).description == "mongodb://***@db1.example,db2.example/skynet?replicaSet=rs0")
        #expect(throws: SkyError.self) { try RegistryAddress.resolve(flag: secret, environment: [:]) }
        #expect(throws: (any Error).self) { try MongoClientPool(uriString: "mongodb://db1,/x?replicaSet=") }
    }
}
