public import Foundation
public import RegistryKit
import SkyLib

/// ``CountStore``: per-node counts in collection `counts`, merged with `$max` (a G-Counter).
extension MongoRegistry {
    /// One upsert per name with `$max`: the stored value never goes back, so a count written twice
    /// or late is never counted twice (a G-Counter).
    public func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws {
        guard !counts.isEmpty else { return }
        try await self.run("merging counts") {
            // One upsert per name: `$max` keeps the larger value, so the merge is a G-Counter's.
            let updates: [MongoValue] = counts.sorted(by: { $0.key < $1.key }).map { name, value in
                .document([
                    ("q", .document([("_id", .json(.string(nodeID + "/" + name)))])),
                    ("u", .document([
                        ("$max", .document([("value", .json(.int(value)))])),
                        ("$set", .document([
                            ("node", .json(.string(nodeID))), ("name", .json(.string(name))), ("updatedAt", .json(.double(at.timeIntervalSince1970))),
                        ])),
                    ])),
                    ("upsert", true),
                ])
            }
            _ = try await self.pool.command([("update", "counts"), ("updates", .array(updates)), ("ordered", false)])
        }
    }

    /// Every node's counts, dead nodes' included.
    public func counts() async throws -> GCounter {
        try await self.run("reading counts") {
            var counter = GCounter()
            for document in try await self.find("counts", filter: [], sort: [("_id", 1)]) {
                guard let node = document["node"]?.stringValue, let name = document["name"]?.stringValue, let value = document["value"]?.intValue else { continue }
                counter.merge(name: name, nodeID: node, value: value)
            }
            return counter
        }
    }
}
