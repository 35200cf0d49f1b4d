public import Foundation
import RegistryKit
import SkyLib

/// ``LeaseStore``: leases in collection `leases`, taken or renewed in one conditional upsert.
extension MongoRegistry {
    /// One conditional upsert: taken when free or expired, renewed for its holder; when another
    /// holder's lease is live the upsert collides on `_id`, and that duplicate-key error is the
    /// "no".
    public func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        do {
            try await self.ensureIndexes()
            // Matches only when the lease is ours or expired; otherwise the upsert collides with
            // the holder's document on _id, and the duplicate key says "taken".
            let reply = try await self.pool.command([
                ("update", "leases"),
                ("updates", .array([.document([
                    // `$and` spelled out, as for dedupe claims (nx-27017 and `_id` beside `$or`).
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(name)))]),
                        .document([("$or", .array([
                            .document([("holder", .json(.string(holder)))]),
                            .document([("expiresAt", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                        ]))]),
                    ]))])),
                    ("u", .document([("$set", .document([
                        ("holder", .json(.string(holder))),
                        ("expiresAt", .json(.double(now.timeIntervalSince1970 + duration))),
                    ]))])),
                    ("upsert", true),
                ])])),
            ])
            return (reply["n"]?.intValue ?? 0) > 0
        } catch let error as MongoError where error.isDuplicateKey {
            return false
        } catch {
            throw SkyError(.registry, "taking lease \(name) in \(self.displayName) failed: \(error)", retryable: true)
        }
    }
}
