public import Foundation
public import RegistryKit
import SkyLib

/// ``CommandQueue``: commands in collection `commands`, each claimed with `findAndModify` (exactly one claimer), pruned by a TTL index after a day.
extension MongoRegistry {
    /// Inserts the commands pending, each with a BSON date for the TTL index that prunes them after
    /// a day.
    public func sendCommands(_ commands: [NodeCommand]) async throws {
        guard !commands.isEmpty else { return }
        try await self.run("sending commands") {
            let documents: [MongoValue] = commands.map { command in
                // Pruned by the TTL index on issuedDate after a day.
                Self.document(id: command.id, fields: command.json, date: ("issuedDate", command.issuedAt))
            }
            _ = try await self.pool.command([("insert", "commands"), ("documents", .array(documents))])
        }
    }

    /// A read first (an idle cluster then sends the server no writes for it), then `findAndModify`
    /// in a loop: it changes one document atomically, so of several claimers exactly one gets each
    /// command.
    public func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        guard !targets.isEmpty, !actions.isEmpty else { return [] }
        let pending: [(String, MongoValue)] = [
            ("target", .document([("$in", .json(.array(targets.map { .string($0) })))])),
            ("action", .document([("$in", .json(.array(actions.map { .string($0.rawValue) })))])),
            ("state", .json(.string(NodeCommand.State.pending.rawValue))),
            ("expiresAt", .document([("$gt", .json(.double(now.timeIntervalSince1970)))])),
        ]
        return try await self.run("claiming commands") {
            // Every node asks on every heartbeat and almost always there is nothing: a read
            // first, so an idle cluster sends the server no writes for it.
            guard try await !self.find("commands", filter: pending, sort: [], limit: 1).isEmpty else { return [] }
            // findAndModify changes one document atomically, so of several claimers exactly one
            // gets each command; loop until none is left.
            var claimed: [NodeCommand] = []
            while claimed.count < 100 {
                let reply = try await self.pool.command([
                    ("findAndModify", "commands"),
                    ("query", .document(MongoDocument(pending))),
                    ("update", .document([("$set", .document([
                        ("state", .json(.string(NodeCommand.State.acknowledged.rawValue))),
                        ("actor", .json(.string(actor))),
                        ("updatedAt", .json(.double(now.timeIntervalSince1970))),
                    ]))])),
                    ("new", true),
                ])
                guard let document = reply["value"], document != .null, let command = NodeCommand(json: document) else { break }
                claimed.append(command)
            }
            return claimed
        }
    }

    /// Moves the command only from the state the caller saw (`from`, in the filter), so an expired
    /// command is never finished and a finished one never expired.
    public func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        try await self.run("updating a command") {
            let reply = try await self.pool.command([
                ("update", "commands"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(id))), ("state", .json(.string(from.rawValue)))])),
                    ("u", .document([("$set", .document([
                        ("state", .json(.string(to.rawValue))), ("result", .json(.string(result))),
                        ("updatedAt", .json(.double(now.timeIntervalSince1970))),
                    ]))])),
                ])])),
            ])
            return (reply["nModified"]?.intValue ?? reply["n"]?.intValue ?? 0) > 0
        }
    }

    /// The stored commands with these ids, in issue order.
    public func commands(ids: [String]) async throws -> [NodeCommand] {
        guard !ids.isEmpty else { return [] }
        return try await self.run("reading commands") {
            try await self.find(
                "commands", filter: [("_id", .document([("$in", .json(.array(ids.map { .string($0) })))]))], sort: [("issuedAt", 1)]
            ).compactMap(NodeCommand.init(json:))
        }
    }

    // MARK: helpers
}
