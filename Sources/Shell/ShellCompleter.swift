/// What Tab offers in `sky cli`: commands first, then filter keys, flags, and the values of a
/// key (`service=up⇥` → `service=uppercase`) from what the registry knows.
public struct ShellCompleter: Sendable {
    /// The values the registry knows, per filter key (`service`: `["reverse", "uppercase"]`).
    public var vocabulary: [String: [String]]

    /// Creates a `ShellCompleter` from its parts.
    public init(vocabulary: [String: [String]] = [:]) {
        self.vocabulary = vocabulary
    }

    /// The candidates for `word`, the word under the cursor, after `before` (the line up to it).
    public func candidates(before: String, word: String) -> [String] {
        let earlier = (try? ShellWords.split(before)) ?? before.split(separator: " ").map(String.init)
        guard let commandName = earlier.first else {
            return ShellSession.commands.map(\.name).filter { $0.hasPrefix(word) }
        }
        if commandName == "help" {
            return earlier.count == 1 ? ShellSession.commands.map(\.name).filter { $0.hasPrefix(word) } : []
        }
        guard let command = ShellSession.commands.first(where: { $0.name == commandName }) else { return [] }
        if let equals = word.firstIndex(of: "=") {
            let key = String(word[..<equals])
            let prefix = String(word[word.index(after: equals)...])
            var values = self.vocabulary[key] ?? []
            if key == "instances" { values = ["1", "2", "3", "4"] }
            return values.filter { $0.hasPrefix(prefix) }.map { "\(key)=\($0)" }
        }
        var options: [String] = []
        switch command.name {
        case "filter":
            options = ShellSession.filterKeys.map { $0 + "=" } + (earlier.count == 1 ? ["clear"] : [])
        case "deploy":
            // The service first, then where and how many.
            options = earlier.count == 1 ? (self.vocabulary["service"] ?? []) : ["host=", "instances="] + command.flags
        case "events", "routes", "trace", "exit":
            options = command.flags
        default:
            options = ShellSession.filterKeys.map { $0 + "=" } + command.flags
        }
        return options.filter { $0.hasPrefix(word) }
    }

    /// The longest text every candidate starts with.
    public static func commonPrefix(_ candidates: [String]) -> String {
        guard var prefix = candidates.first else { return "" }
        for candidate in candidates.dropFirst() {
            while !candidate.hasPrefix(prefix) { prefix.removeLast() }
        }
        return prefix
    }
}
