public import Foundation
import GRDB
public import RegistryKit
import SkyLib

/// ``CommandQueue``: commands in table `commands`, claimed in one write transaction (SQLite's single writer makes
/// each claim exclusive); a day's worth kept.
extension SQLiteRegistry {
    /// Commands are kept this long, then pruned.
    static let commandsKeptFor: TimeInterval = 86400

    /// Inserts the commands pending, and prunes those issued more than a day ago in the same
    /// transaction.
    public func sendCommands(_ commands: [NodeCommand]) async throws {
        guard !commands.isEmpty else { return }
        try await self.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO commands (id, action, target, arguments, issuedBy, issuedAt, expiresAt, state, actor, result, updatedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for command in commands {
                try statement.execute(arguments: [
                    command.id, command.action.rawValue, command.target, JSONWriter.string(.object(command.arguments.mapValues { .string($0) })),
                    command.issuedBy, command.issuedAt.timeIntervalSince1970, command.expiresAt.timeIntervalSince1970,
                    command.state.rawValue, command.actor, command.result, command.updatedAt.timeIntervalSince1970,
                ])
            }
            try db.execute(sql: "DELETE FROM commands WHERE issuedAt < ?", arguments: [Date().timeIntervalSince1970 - Self.commandsKeptFor])
        }
    }

    /// Every node asks on every heartbeat and almost always there is nothing: a read (which takes
    /// no write lock) asks first, and only a pending match is claimed, in one write transaction
    /// that SQLite's single writer makes exclusive.
    public func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        guard !targets.isEmpty, !actions.isEmpty else { return [] }
        let targetList = targets.map { _ in "?" }.joined(separator: ",")
        let actionList = actions.map { _ in "?" }.joined(separator: ",")
        let filter = "state = 'pending' AND expiresAt > ? AND target IN (\(targetList)) AND action IN (\(actionList))"
        let values: [(any DatabaseValueConvertible)?] = [now.timeIntervalSince1970] + targets + actions.map(\.rawValue)
        let arguments = StatementArguments(values)
        // Every node asks on every heartbeat and almost always there is nothing: ask with a
        // read, which takes no write lock, before claiming in a write.
        let any = try await self.read("commands") { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM commands WHERE \(filter))", arguments: arguments) ?? false
        }
        guard any else { return [] }
        // One write transaction: SQLite serialises writers, so two claimers cannot both see a
        // command pending.
        return try await self.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM commands WHERE \(filter)", arguments: arguments)
            var claimed: [NodeCommand] = []
            for row in rows {
                try db.execute(
                    sql: "UPDATE commands SET state = 'acknowledged', actor = ?, updatedAt = ? WHERE id = ?",
                    arguments: [actor, now.timeIntervalSince1970, row["id"] as String]
                )
                if var command = Self.command(from: row) {
                    command.state = .acknowledged
                    command.actor = actor
                    command.updatedAt = now
                    claimed.append(command)
                }
            }
            return claimed
        }
    }

    /// Moves the command only from the state the caller saw (`from`), so an expired command is
    /// never finished and a finished one never expired.
    public func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE commands SET state = ?, result = ?, updatedAt = ? WHERE id = ? AND state = ?",
                arguments: [to.rawValue, result, now.timeIntervalSince1970, id, from.rawValue]
            )
            return db.changesCount > 0
        }
    }

    /// The stored commands with these ids, in issue order (unknown ids left out).
    public func commands(ids: [String]) async throws -> [NodeCommand] {
        guard !ids.isEmpty else { return [] }
        return try await self.read("commands") { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM commands WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ","))) ORDER BY issuedAt",
                arguments: StatementArguments(ids.map { $0 as (any DatabaseValueConvertible)? })
            ).compactMap(Self.command(from:))
        }
    }

    /// A command from its row; `nil` for an action or state this build does not know (written by a
    /// newer `sky`).
    static func command(from row: Row) -> NodeCommand? {
        var arguments: [String: String] = [:]
        if let text: String = row["arguments"], let json = try? JSONParser.parse(text) {
            arguments = (json.objectValue ?? [:]).compactMapValues(\.stringValue)
        }
        guard let action = NodeCommand.Action(rawValue: row["action"]), let state = NodeCommand.State(rawValue: row["state"]) else { return nil }
        let issuedAt = Date(timeIntervalSince1970: row["issuedAt"])
        var command = NodeCommand(
            id: row["id"], action: action, target: row["target"], arguments: arguments, issuedBy: row["issuedBy"], issuedAt: issuedAt,
            state: state, actor: row["actor"], result: row["result"], updatedAt: Date(timeIntervalSince1970: row["updatedAt"])
        )
        command.expiresAt = Date(timeIntervalSince1970: row["expiresAt"])
        return command
    }
}
