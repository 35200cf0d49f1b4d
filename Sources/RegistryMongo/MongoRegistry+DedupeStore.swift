public import Foundation
public import RegistryKit
public import SkyLib

/// ``DedupeStore``: dedupe keys in collection `dedupe`, `_id` = route/key; a claim is one conditional upsert, so the duplicate key error of a concurrent one says "taken".
extension MongoRegistry {
    /// One conditional upsert on `_id` = `route/key`: it matches only a claim that ran out, so when
    /// the key is held the upsert collides on `_id` and the duplicate-key error says "taken"; the
    /// holder's document is then read to answer `.running` or `.done`.
    public func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        let id = route + "/" + key
        do {
            // Matches only a claim that ran out; otherwise the upsert collides on _id and the
            // duplicate key says "taken" (as the reaper's lease does).
            let reply = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    // `$and` spelled out: nx-27017 (the test server) matches any document for an
                    // update whose filter has `_id` beside a top-level `$or`.
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(id)))]),
                        .document([("$or", .array([
                            .document([("state", "done"), ("expiresAt", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                            .document([("state", "running"), ("runningUntil", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                        ]))]),
                    ]))])),
                    ("u", .document([("$set", .document([
                        ("state", "running"), ("owner", .json(.string(owner))), ("answer", .json(.null)),
                        ("expiresAt", .json(.double(expiresAt.timeIntervalSince1970))), ("runningUntil", .json(.double(runningUntil.timeIntervalSince1970))),
                        ("expireAtDate", .date(Int64(expiresAt.timeIntervalSince1970 * 1000))),
                    ]))])),
                    ("upsert", true),
                ])])),
            ])
            if (reply["n"]?.intValue ?? 0) > 0 { return .claimed }
        } catch let error as MongoError where error.isDuplicateKey {
            // Taken: read what it holds.
        } catch {
            throw SkyError(.registry, "claiming dedupe key in \(self.displayName) failed: \(error)", retryable: true)
        }
        return try await self.run("reading a dedupe key") {
            guard let document = try await self.find("dedupe", filter: [("_id", .json(.string(id)))], sort: [], limit: 1).first else { return .running(owner: "") }
            if document["state"]?.stringValue == "done", let text = document["answer"]?.stringValue, let answer = try? JSONParser.parse(text) { return .done(answer) }
            return .running(owner: document["owner"]?.stringValue ?? "")
        }
    }

    /// Moves `runningUntil` on the owner's running claim; the matched count says whether the owner
    /// still holds it.
    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try await self.run("renewing a dedupe claim") {
            let reply = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(route + "/" + key)))]),
                        .document([("owner", .json(.string(owner)))]),
                        .document([("state", "running")]),
                    ]))])),
                    ("u", .document([("$set", .document([("runningUntil", .json(.double(runningUntil.timeIntervalSince1970)))]))])),
                ])])),
            ])
            return (reply["n"]?.intValue ?? 0) > 0
        }
    }

    /// Stores the answer under the owner's claim only (a claim lost to another router is left
    /// alone).
    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        try await self.run("completing a dedupe key") {
            _ = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(route + "/" + key))), ("owner", .json(.string(owner)))])),
                    ("u", .document([("$set", .document([("state", "done"), ("answer", .json(.string(JSONWriter.string(answer))))]))])),
                ])])),
            ])
        }
    }

    /// Deletes the owner's running claim, so the next request with the key runs.
    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        try await self.run("releasing a dedupe key") {
            _ = try await self.pool.command([
                ("delete", "dedupe"),
                ("deletes", .array([.document([
                    ("q", .document([("_id", .json(.string(route + "/" + key))), ("owner", .json(.string(owner))), ("state", "running")])),
                    ("limit", 1),
                ])])),
            ])
        }
    }
}
