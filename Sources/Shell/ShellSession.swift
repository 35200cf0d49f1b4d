import Foundation

/// The state and grammar of `sky cli`: turns each line into an action, keeping a filter
/// (`filter service=uppercase region=eu`) that later commands inherit.
///
/// Commands are the `sky` commands themselves, with `key=value` words for the filter keys
/// (`stop host=web-1`) and any `--flag` passed through as written (`stop --dry-run`). The
/// shell only builds their arguments: `sky` runs them exactly as on the command line.
public struct ShellSession: Sendable {
    /// One shell command, for `help` and completion.
    public struct Command: Sendable, Hashable {
        /// What is typed first.
        public let name: String
        /// Its spelling with arguments, for `help`.
        public let usage: String
        /// What it does, in a few words.
        public let summary: String
        /// Whether the filter applies to it.
        public let filtered: Bool
        /// Flags offered by completion.
        public let flags: [String]
    }

    /// What to do with a line.
    public enum Action: Sendable, Hashable {
        /// Print this (help, the filter, a mistake).
        case say(String)
        /// Run `sky ARGUMENTS…`, after printing `preface` if there is one.
        case run([String], preface: String?)
        /// Print the newest registry events.
        case events(Int)
        /// Leave the shell (`exit`, `quit`, Ctrl-D).
        case exit
        /// An empty line: nothing to do, not even a new prompt's worth of output.
        case nothing
    }

    /// The keys a filter and `key=value` words take: the node fields every filtered `sky`
    /// command takes as `--key value`, so one spelling works for all of them.
    public static let filterKeys = ["service", "version", "region", "host", "kind"]

    /// Every command the shell knows, in `help` order: the `sky` commands an operator uses
    /// interactively, plus the shell's own (`filter`, `events`, `help`, `exit`).
    public static let commands: [Command] = [
        Command(name: "nodes", usage: "nodes [key=value…] [--json]", summary: "list the nodes that match the filter", filtered: true, flags: ["--json"]),
        Command(name: "services", usage: "services [key=value…] [--json]", summary: "list services and their instances", filtered: true, flags: ["--json"]),
        Command(name: "stop", usage: "stop [key=value…] [--dry-run] [--all] [--timeout S]", summary: "drain and stop the matching nodes", filtered: true, flags: ["--dry-run", "--all", "--timeout", "--json"]),
        Command(name: "restart", usage: "restart [key=value…] [--dry-run] [--all] [--timeout S]", summary: "drain and restart the matching nodes", filtered: true, flags: ["--dry-run", "--all", "--timeout", "--json"]),
        Command(name: "unregister", usage: "unregister [key=value…] [--dry-run] [--all]", summary: "take the matching nodes out of rotation, still running", filtered: true, flags: ["--dry-run", "--all", "--timeout", "--json"]),
        Command(name: "register", usage: "register [key=value…] [--dry-run] [--all]", summary: "put unregistered nodes back in rotation", filtered: true, flags: ["--dry-run", "--all", "--timeout", "--json"]),
        Command(name: "deploy", usage: "deploy SERVICE [host=H] [instances=N] [--dry-run]", summary: "ask a host's daemon to start instances of a service", filtered: false, flags: ["--dry-run", "--timeout"]),
        Command(name: "events", usage: "events [N]", summary: "the newest registry events: acknowledgements, registrations, deaths", filtered: false, flags: []),
        Command(name: "routes", usage: "routes", summary: "the routes kept in the registry", filtered: false, flags: []),
        Command(name: "trace", usage: "trace ID", summary: "one request's path through the cluster", filtered: false, flags: ["--json"]),
        Command(name: "filter", usage: "filter [key=value…] | filter clear", summary: "show or set the filter later commands use (key= alone removes a key)", filtered: false, flags: []),
        Command(name: "help", usage: "help [command]", summary: "this list, or one command's options", filtered: false, flags: []),
        Command(name: "exit", usage: "exit (or Ctrl-D)", summary: "leave the shell", filtered: false, flags: []),
    ]

    /// The filter now, in ``filterKeys`` order.
    public private(set) var filter: [(key: String, value: String)] = []

    /// Creates a `ShellSession` with the defaults.
    public init() {}

    /// The filter as written: `service=uppercase region=eu`, or `none`.
    public var filterDescription: String {
        self.filter.isEmpty ? "none" : self.filter.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// The prompt, showing the filter when there is one.
    public var prompt: String {
        self.filter.isEmpty ? "sky> " : "sky [\(self.filterDescription)]> "
    }

    /// What to do with one line: the shell's own commands (`filter`, `help`, `events`, `exit`)
    /// here, anything else as `sky` arguments with the filter applied. A line that does not split
    /// (an unclosed quote) runs nothing.
    public mutating func handle(_ line: String) -> Action {
        let words: [String]
        do {
            words = try ShellWords.split(line)
        } catch {
            return .say("\(error); nothing was run")
        }
        guard let name = words.first else { return .nothing }
        let rest = Array(words.dropFirst())
        switch name {
        case "exit", "quit":
            return .exit
        case "help", "?":
            return self.help(rest.first)
        case "filter":
            return self.setFilter(rest)
        case "events":
            guard rest.count <= 1, let count = rest.first.map({ Int($0) }) ?? 20, count > 0 else { return .say("usage: events [N]") }
            return .events(count)
        default:
            guard let command = Self.commands.first(where: { $0.name == name }) else {
                return .say("unknown command '\(name)'; type help for the list")
            }
            if rest.contains("--help") || rest.contains("-h") { return self.help(name) }
            return self.arguments(for: command, rest)
        }
    }

    /// The command list, or one command's usage (its `--help` from `sky` itself, so the two never
    /// disagree).
    private func help(_ topic: String?) -> Action {
        guard let topic else {
            let width = Self.commands.map(\.usage.count).max() ?? 0
            let lines = Self.commands.map { "  " + $0.usage.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.summary }
            return .say((["Commands (Tab completes commands, keys and the values the registry knows):"] + lines + [
                "Filter keys: \(Self.filterKeys.joined(separator: ", ")). The filter now: \(self.filterDescription).",
            ]).joined(separator: "\n"))
        }
        guard let command = Self.commands.first(where: { $0.name == topic }) else {
            return .say("unknown command '\(topic)'; type help for the list")
        }
        let usage = "usage in this shell: \(command.usage)" + (command.filtered ? "  (key=value is the same as --key value)" : "")
        switch command.name {
        case "filter", "help", "exit", "events": return .say(usage + "\n" + command.summary)
        default: return .run([command.name, "--help"], preface: usage)
        }
    }

    /// Sets, changes or clears filter keys; an unknown key leaves the whole filter as it was, so a
    /// typo cannot half-apply.
    private mutating func setFilter(_ words: [String]) -> Action {
        if words.isEmpty { return .say("filter: \(self.filterDescription)") }
        if words == ["clear"] || words == ["none"] {
            self.filter = []
            return .say("filter: none")
        }
        var updated = Dictionary(uniqueKeysWithValues: self.filter.map { ($0.key, $0.value) })
        for word in words {
            guard let (key, value) = Self.pair(word), Self.filterKeys.contains(key) else {
                return .say("filter takes key=value with keys \(Self.filterKeys.joined(separator: ", ")), not '\(word)'; the filter is unchanged")
            }
            updated[key] = value.isEmpty ? nil : value
        }
        self.filter = Self.filterKeys.compactMap { key in updated[key].map { (key, $0) } }
        return .say("filter: \(self.filterDescription)")
    }

    /// `sky` arguments for a command: the filter, overridden by the line's own `key=value`
    /// words, then everything else as written.
    private func arguments(for command: Command, _ words: [String]) -> Action {
        var filter = Dictionary(uniqueKeysWithValues: self.filter.map { ($0.key, $0.value) })
        var extra: [String] = []
        var positional: [String] = []
        for word in words {
            if !word.hasPrefix("-"), let (key, value) = Self.pair(word) {
                if Self.filterKeys.contains(key) { filter[key] = value.isEmpty ? nil : value } else { extra += ["--\(key)", value] }
            } else if word.hasPrefix("-") || extra.last?.hasPrefix("-") == true && ["--timeout"].contains(extra.last!) {
                extra.append(word)
            } else {
                positional.append(word)
            }
        }
        var arguments = [command.name]
        if command.filtered {
            for key in Self.filterKeys { if let value = filter[key] { arguments += ["--\(key)", value] } }
            guard positional.isEmpty else { return .say("\(command.name) takes key=value words, not '\(positional[0])'; see help \(command.name)") }
        } else if command.name == "deploy" {
            guard let service = positional.first ?? filter["service"] else { return .say("usage: \(command.usage)") }
            arguments.append(service)
            if let host = filter["host"] { arguments += ["--host", host] }
            positional.removeFirst(min(1, positional.count))
            guard positional.isEmpty else { return .say("usage: \(command.usage)") }
        } else {
            arguments += positional
        }
        return .run(arguments + extra, preface: nil)
    }

    /// `key=value` split at the first `=` (values may contain more).
    private static func pair(_ word: String) -> (String, String)? {
        guard let equals = word.firstIndex(of: "=") else { return nil }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }
}
