public import Foundation
import SkyLib

/// Sends commands to nodes through the registry and waits for their acknowledgements: the
/// engine of `sky stop|restart|register|unregister|deploy`.
public struct CommandIssuer: Sendable {
    /// Where commands are stored and watched.
    public let registry: any CommandQueue
    /// Who asks, as recorded on each command: `sky stop by root@ops-1`.
    public let issuedBy: String

    /// Creates a `CommandIssuer` from its parts.
    public init(registry: any CommandQueue, issuedBy: String) {
        self.registry = registry
        self.issuedBy = issuedBy
    }

    /// `sky VERB by USER@HOST`, for ``issuedBy``.
    /// - Parameters:
    ///   - verb: the command's name (`stop`, `restart` …).
    ///   - environment: the process's environment variables (`USER`, `LOGNAME`).
    public static func describeIssuer(verb: String, environment: [String: String]) -> String {
        let user = environment["USER"] ?? environment["LOGNAME"] ?? getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "\(getuid())"
        return "sky \(verb) by \(user)@\(ProcessInfo.processInfo.hostName)"
    }

    /// Writes one `action` command per node.
    /// - Parameters:
    ///   - action: what the nodes are to do.
    ///   - nodes: the nodes addressed, one command each.
    ///   - arguments: details of the order (`deploy`: `service`, `instances`).
    ///   - expiresIn: seconds a command may wait to be claimed; after that it is void.
    /// - Returns: the commands as stored (to follow with `awaitOutcomes`).
    public func send(_ action: NodeCommand.Action, to nodes: [NodeRecord], arguments: [String: String] = [:], expiresIn: TimeInterval) async throws -> [NodeCommand] {
        let now = Date()
        let commands = nodes.map { node in
            NodeCommand(action: action, target: node.id, arguments: arguments, issuedBy: self.issuedBy, issuedAt: now, expiresIn: expiresIn)
        }
        try await self.registry.sendCommands(commands)
        return commands
    }

    /// Waits until every command has finished or `timeout` passed, calling `onFinished` once
    /// for each as it finishes. Commands still unclaimed at the end are marked `expired`, so
    /// none of them can act after the caller has reported it did not.
    /// - Returns: the commands as they ended (still `acknowledged` when the actor did not
    ///   finish in time).
    public func awaitOutcomes(
        of commands: [NodeCommand],
        timeout: Duration,
        poll: Duration = .milliseconds(100),
        onFinished: (NodeCommand) -> Void = { _ in }
    ) async throws -> [NodeCommand] {
        let deadline = ContinuousClock.now + timeout
        var latest = Dictionary(uniqueKeysWithValues: commands.map { ($0.id, $0) })
        var reported: Set<String> = []
        func report() {
            for command in commands.compactMap({ latest[$0.id] }) where command.state.isFinal && !reported.contains(command.id) {
                reported.insert(command.id)
                onFinished(command)
            }
        }
        while true {
            for command in try await self.registry.commands(ids: commands.map(\.id)) { latest[command.id] = command }
            report()
            if reported.count == commands.count || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: poll)
        }
        let unclaimed = "nobody took it within \(Int(timeout.components.seconds)) s"
        for command in commands.compactMap({ latest[$0.id] }) where command.state == .pending {
            if try await self.registry.updateCommand(id: command.id, from: .pending, to: .expired, result: unclaimed, now: Date()) {
                var expired = command
                expired.state = .expired
                expired.result = unclaimed
                latest[command.id] = expired
            } else if let now = try await self.registry.commands(ids: [command.id]).first {
                // Claimed just now: it acts; say so truthfully.
                latest[command.id] = now
            }
        }
        report()
        return commands.compactMap { latest[$0.id] }
    }
}
