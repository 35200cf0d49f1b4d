public import RegistryKit
import RegistryMongo
import RegistrySQLite
import SkyLib
import RouteModel

extension RegistryAddress {
    /// Opens the registry at this address with the driver its scheme names. This is the one
    /// place that links both drivers: the roles (Routing, Initiators, Services, Reaper) see
    /// only ``Registry``.
    /// - Throws: `SkyError` when the address cannot be opened.
    public func open() async throws -> any Registry {
        switch self {
        case .sqlite(let path): return try SQLiteRegistry(path: path)
        case .mongodb(let uri): return try await MongoRegistry(uri: uri)
        }
    }

    /// What holds this registry's write lock for a while (`sky drill`'s `suspend:registry`):
    /// for an SQLite file, its lock; `nil` for MongoDB, whose server process is suspended
    /// instead.
    public var writeLockHolder: (@Sendable (Duration) async throws -> Void)? {
        guard case .sqlite(let path) = self else { return nil }
        return { length in try await SQLiteRegistry.holdWriteLock(path: path, for: length) }
    }
}
