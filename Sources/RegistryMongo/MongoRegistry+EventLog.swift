import Foundation
public import RegistryKit
import SkyLib

/// ``EventLog``: the event log in collection `events`.
extension MongoRegistry {
    /// Inserts the event with a BSON date for the TTL index that keeps the log to recent history.
    public func record(_ event: RegistryEvent) async throws {
        try await self.run("recording an event") {
            // Sortable ids (time, then a random tail) keep "newest first" exact.
            let id = String(format: "%016llx", UInt64(event.at.timeIntervalSince1970 * 1_000_000)) + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            _ = try await self.pool.command([
                ("insert", "events"),
                ("documents", .array([.document([
                    ("_id", .json(.string(id))),
                    ("at", .json(.double(event.at.timeIntervalSince1970))),
                    ("atDate", .date(Int64(event.at.timeIntervalSince1970 * 1000))),
                    ("kind", .json(.string(event.kind))),
                    ("nodeID", .json(.string(event.nodeID))),
                    ("service", .json(.string(event.service))),
                    ("message", .json(.string(event.message))),
                ])])),
            ])
        }
    }

    /// The newest first.
    public func events(limit: Int) async throws -> [RegistryEvent] {
        try await self.run("reading events") {
            try await self.find("events", filter: [], sort: [("_id", -1)], limit: limit).map { document in
                RegistryEvent(
                    at: Date(timeIntervalSince1970: document["at"]?.doubleValue ?? 0),
                    kind: document["kind"]?.stringValue ?? "",
                    nodeID: document["nodeID"]?.stringValue ?? "",
                    service: document["service"]?.stringValue ?? "",
                    message: document["message"]?.stringValue ?? ""
                )
            }
        }
    }
}
