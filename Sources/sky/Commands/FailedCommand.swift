import ArgumentParser
import Foundation
import NodeRuntime
import RegistryKit
import SkyLib

/// `sky failed`: failed inputs of every initiator, in one place: list them, show one, send them
/// again through their route, or drop them with a reason.
struct FailedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failed",
        abstract: "List, show, redrive or drop failed inputs (files, CSV rows, STOMP messages, HTTP requests of routes with keepFailed: true).",
        discussion: """
            Each failed input stays where its source parks it (.failed/, rejects.csv, the dead-letter \
            queue) and is also kept in the registry, where this command finds it. A redrive is claimed \
            in the registry, so two operators never send one input twice; the node running its source \
            puts it back: the file into its folder, the rows as a new CSV file (answers keep their \
            lines), the message onto its destination, the HTTP body through its route. An input that \
            fails again is back in the list with one attempt more.
            """,
        subcommands: [List.self, Show.self, Redrive.self, Drop.self],
        defaultSubcommand: List.self
    )

    /// Filters shared by `list` and `redrive`.
    struct Filters: ParsableArguments {
        /// A route's name, as in `sky failed list --route orders`.
        @Option(help: "Only this route.") var route: String?
        /// `files`, `csv`, `stomp` or `http`.
        @Option(help: "Only inputs of this source: \(InputSource.allCases.map(\.rawValue).joined(separator: ", ")).") var source: String?
        /// A stable error code (PROTOCOL.md lists them).
        @Option(help: "Only this error code (step_failed, rejected, bad_request …).") var code: String?
        /// How far back, from now: a duration with a unit, days allowed.
        @Option(help: "Only inputs that failed within this long (30s, 10m, 1h, 2d).") var since: String?

        /// A source kind and a duration that parse.
        func validate() throws {
            if let source, InputSource(rawValue: source) == nil {
                throw ValidationError("unknown --source '\(source)' (sources: \(InputSource.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if let since, Self.seconds(since) == nil { throw ValidationError("bad --since '\(since)' (use 30s, 10m, 1h or 2d)") }
        }

        /// The filters as a registry query, for items in `states`.
        func query(states: Set<FailedItem.State>?) -> FailedQuery {
            FailedQuery(
                route: self.route, source: self.source.flatMap(InputSource.init(rawValue:)), code: self.code,
                since: self.since.flatMap(Self.seconds).map { Date().addingTimeInterval(-$0) }, states: states
            )
        }

        /// `30s`, `10m`, `1h`, `2d` in seconds.
        static func seconds(_ text: String) -> TimeInterval? {
            if text.hasSuffix("d"), let days = Double(text.dropLast()), days > 0 { return days * 86400 }
            return DurationParser.parse(text).map { $0.seconds }.flatMap { $0 > 0 ? $0 : nil }
        }
    }

    /// `sky failed list`: the open items (failed, or on their way through a redrive), newest first.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List failed inputs, the latest first.")

        /// Which items: route, source, code, age.
        @OptionGroup var filters: Filters
        /// Done and dropped items are kept a week; they are shown only when asked for.
        @Flag(help: "Also list inputs done after a redrive, and dropped ones (kept a week).") var all = false
        /// The newest this many; a table of thousands helps nobody.
        @Option(help: "At most this many.") var limit = 100
        /// For scripts: the items as `sky failed show --json` gives each.
        @Flag(help: "Print JSON instead of a table.") var json = false
        /// Where the items are kept.
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// A table: id, route, where it came from, error, attempts, age, state.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let items = try await registry.failedItems(self.filters.query(states: self.all ? nil : [.failed, .redrive, .running]), limit: max(1, self.limit))
            if self.json {
                Output.line(JSONWriter.string(.array(items.map(\.json))))
                return
            }
            guard !items.isEmpty else {
                Output.line("no failed inputs\(self.all ? "" : " open") in \(registry.displayName)")
                return
            }
            let now = Date()
            Output.line(Table.render(
                header: ["ID", "ROUTE", "SOURCE", "INPUT", "CODE", "ATTEMPTS", "FAILED", "STATE", "ERROR"],
                rows: items.map { item in
                    [
                        item.shortID, item.route, "\(item.source.rawValue) \(item.resource)", FailedCommand.place(item), item.code, "\(item.attempts)",
                        FailedCommand.age(now.timeIntervalSince(item.failedAt)) + " ago", item.state.rawValue, String(item.message.prefix(80)),
                    ]
                }
            ))
        }
    }

    /// `sky failed show ID`: everything kept of one item.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one failed input: its input, error, step, attempts and trace.")

        /// The whole id, or the 12 characters a table shows.
        @Argument(help: "The item's id, or its last characters as `sky failed list` shows them.") var id: String
        /// The item as stored.
        @Flag(help: "Print JSON.") var json = false
        /// Where the item is kept.
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// The item's fields, one per line, then its input.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let item = try await FailedCommand.find(self.id, in: registry)
            if self.json {
                Output.line(JSONWriter.string(item.json))
                return
            }
            var lines = [
                "id        \(item.id)", "route     \(item.route)", "source    \(item.source.rawValue) \(item.resource)", "input     \(FailedCommand.place(item))",
                "state     \(item.state.rawValue)" + (item.actor.isEmpty ? "" : " (by \(item.actor))") + (item.note.isEmpty ? "" : ": \(item.note)"),
                "error     \(item.code): \(item.message)",
            ]
            if let step = item.step { lines.append("step      \(step)" + (item.service.map { " (\($0))" } ?? "")) }
            lines.append("attempts  \(item.attempts)")
            lines.append("failed    \(ISO8601DateFormatter().string(from: item.failedAt)) on node \(Identifiers.short(item.node))")
            if let trace = item.traceID { lines.append("trace     \(trace)   (sky trace \(trace))") }
            for key in item.details.keys.sorted() where !["file", "line"].contains(key) { lines.append("\(key.padding(toLength: 10, withPad: " ", startingAt: 0))\(item.details[key] ?? "")") }
            lines.append("")
            if let input = item.input {
                lines.append("input (\(item.inputBytes) bytes):")
                lines.append(input)
            } else {
                lines.append("input (\(item.inputBytes) bytes): not kept (over \(FailedItem.inputLimit / 1024) KiB, or not text); see where its source parked it")
            }
            Output.line(lines.joined(separator: "\n"))
        }
    }

    /// `sky failed redrive`: asks for items to run again; the node running each source puts them
    /// back.
    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redrive",
            abstract: "Send failed inputs through their route again: one by id, those matching the filters, or all.",
            discussion: "An input already asked for, running again or dropped is left alone (and named). With --wait, waits for each outcome."
        )

        /// One item, by id or its end.
        @Argument(help: "The item's id (or its last characters).") var id: String?
        /// Or every failed item these match.
        @OptionGroup var filters: Filters
        /// Or every failed item at all.
        @Flag(help: "Every failed input.") var all = false
        /// Without it the command returns once the redrive is asked for; the nodes act within a
        /// second.
        @Flag(help: "Wait until each input has run again and print how it went.") var wait = false
        /// How long `--wait` waits before naming what is still running.
        @Option(help: "Seconds --wait waits.") var timeout: Double = 60
        /// Where the items are kept.
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// One of: an id, a filter, or --all; never none (a bare `redrive` must not send everything).
        func validate() throws {
            let filtered = self.filters.route != nil || self.filters.source != nil || self.filters.code != nil || self.filters.since != nil
            guard (self.id != nil ? 1 : 0) + (filtered ? 1 : 0) + (self.all ? 1 : 0) == 1 else {
                throw ValidationError("name one item (ID), filter (--route, --source, --code, --since), or say --all")
            }
            guard self.timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
        }

        /// Moves each item from failed to redrive, conditionally, so two operators never both do.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let actor = CommandIssuer.describeIssuer(verb: "failed redrive")
            let items: [FailedItem] =
                if let id = self.id { [try await FailedCommand.find(id, in: registry)] } else {
                    try await registry.failedItems(self.filters.query(states: [.failed]), limit: 10_000)
                }
            var asked: [String] = []
            for item in items {
                // A redrive that a node took and never finished (it stopped) may be asked again
                // once it is five minutes old.
                var moved = try await registry.moveFailed(id: item.id, from: [.failed], updatedBefore: nil, to: .redrive, actor: actor, note: "", now: Date())
                if moved == nil {
                    moved = try await registry.moveFailed(
                        id: item.id, from: [.running], updatedBefore: Date().addingTimeInterval(-300), to: .redrive, actor: actor, note: "", now: Date()
                    )
                }
                if moved != nil {
                    asked.append(item.id)
                } else if self.id != nil {
                    let now = try await registry.failedItems(FailedQuery(ids: [item.id]), limit: 1).first ?? item
                    Output.line("not redriven: \(item.shortID) is \(now.state.rawValue)" + (now.actor.isEmpty ? "" : " (by \(now.actor))"))
                    throw ExitCode(1)
                }
            }
            Output.line("redrive asked for \(asked.count) input\(asked.count == 1 ? "" : "s"); the node running each source puts it back")
            guard self.wait, !asked.isEmpty else { return }
            let deadline = Date().addingTimeInterval(self.timeout)
            var outcomes: [FailedItem] = []
            while true {
                outcomes = try await registry.failedItems(FailedQuery(ids: asked), limit: asked.count)
                if outcomes.allSatisfy({ ![.redrive, .running].contains($0.state) }) || Date() >= deadline { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            var failedAgain = false
            for item in outcomes.sorted(by: { $0.id < $1.id }) {
                switch item.state {
                case .done: Output.line("done     \(item.shortID) \(item.route): \(item.note)")
                case .failed:
                    failedAgain = true
                    Output.line("failed   \(item.shortID) \(item.route): attempt \(item.attempts): \(item.note.isEmpty ? item.message : item.note)")
                default:
                    failedAgain = true
                    Output.line("waiting  \(item.shortID) \(item.route): still \(item.state.rawValue) after \(Int(self.timeout)) s")
                }
            }
            if failedAgain { throw ExitCode(1) }
        }
    }

    /// `sky failed drop ID --reason`: gives up on an input, saying why.
    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "drop", abstract: "Give up on a failed input, with a reason (kept a week, logged and counted).")

        /// One item, by id or its end.
        @Argument(help: "The item's id (or its last characters).") var id: String
        /// Kept with the item, and shown by `sky failed list --all` and `show`.
        @Option(help: "Why it is dropped (required).") var reason: String
        /// Where the item is kept.
        @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

        /// A reason that says something.
        func validate() throws {
            guard !self.reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
        }

        /// Moves the item from failed to dropped, only if nobody moved it meanwhile.
        func run() async throws {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            let item = try await FailedCommand.find(self.id, in: registry)
            let actor = CommandIssuer.describeIssuer(verb: "failed drop")
            guard let dropped = try await registry.moveFailed(id: item.id, from: [.failed], updatedBefore: nil, to: .dropped, actor: actor, note: self.reason, now: Date()) else {
                Output.line("not dropped: \(item.shortID) is \(item.state.rawValue)" + (item.actor.isEmpty ? "" : " (by \(item.actor))"))
                throw ExitCode(1)
            }
            Output.line("dropped  \(dropped.shortID) \(dropped.route): \(self.reason)")
        }
    }

    /// The item with id `id`, or the one whose id ends with it.
    ///
    /// The tables show an id's last 12 characters, which is what people type; more than one
    /// match asks for more of the id rather than guess.
    static func find(_ id: String, in store: any FailedStore) async throws -> FailedItem {
        if let exact = try await store.failedItems(FailedQuery(ids: [id]), limit: 1).first { return exact }
        let matches = try await store.failedItems(FailedQuery(), limit: 100_000).filter { $0.id.hasSuffix(id) }
        guard matches.count == 1, let item = matches.first else {
            Output.line(matches.isEmpty ? "no failed input with id \(id)" : "\(matches.count) failed inputs end with \(id); give more of the id")
            throw ExitCode(1)
        }
        return item
    }

    /// Where the input was: `FILE:LINE`, `FILE`, or the message's correlation id.
    static func place(_ item: FailedItem) -> String {
        switch item.source {
        case .csv: (item.details["file"] ?? "?") + (item.details["line"].map { ":\($0)" } ?? "")
        case .files: item.details["file"] ?? "?"
        case .stomp:
            (item.details["headers"].flatMap { try? JSONParser.parse($0) }?["correlation-id"]?.stringValue).map { "correlation-id \($0)" } ?? "message"
        case .http: item.details["requestId"].map { "request \($0)" } ?? "request"
        }
    }

    /// `12s`, `5m`, `3h`, `2d`.
    static func age(_ seconds: TimeInterval) -> String {
        let whole = Int(max(0, seconds))
        return whole < 60 ? "\(whole)s" : whole < 3600 ? "\(whole / 60)m" : whole < 86400 ? "\(whole / 3600)h" : "\(whole / 86400)d"
    }
}
