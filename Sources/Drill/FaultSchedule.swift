import Foundation
import SkyLib

/// One scripted fault of a drill: what to do, to what, when, for how long, and how often.
///
/// Written `ACTION:TARGET@AT[/FOR]`, or `ACTION:TARGET@every PERIOD[/FOR]` to repeat it every
/// `PERIOD` from `PERIOD` on (`kill:uppercase@30s/2s`, `suspend:registry@every 60s/10s`).
public struct Fault: Sendable, Hashable, CustomStringConvertible {
    /// What the drill does to its target.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        /// SIGKILL one instance (as a crash would); with `/FOR`, start it again after `FOR` with
        /// the same command line, environment and folder.
        case kill
        /// SIGTERM one instance (a graceful stop: what is in hand finishes), then start it
        /// again once it has exited (after `FOR`, when given).
        case restart
        /// Freeze one instance (SIGSTOP) for `FOR`, then let it go on (SIGCONT); for an SQLite
        /// registry, hold its write lock for `FOR`.
        case suspend
        /// Fill the file system of a route's drop folder for `FOR` (only a small one: the
        /// drill refuses to write more than its limit).
        case fill
    }

    /// What the drill does.
    public var action: Action
    /// A service's name, `*` (one instance of every service), `router`, `initiator`, `reaper`, `registry`,
    /// `broker`, or for `fill` a route's name.
    public var target: String
    /// When, from the start of the load.
    public var at: Duration
    /// How long the fault lasts (suspend, fill) or the pause before a restart (kill, restart).
    public var length: Duration?
    /// Repeated every this long, when set.
    public var every: Duration?

    /// Creates a `Fault` from its parts.
    public init(action: Action, target: String, at: Duration, length: Duration? = nil, every: Duration? = nil) {
        self.action = action
        self.target = target
        self.at = at
        self.length = length
        self.every = every
    }

    /// The fault as written.
    public var description: String {
        let when = self.every.map { "every \(DurationParser.format($0))" } ?? DurationParser.format(self.at)
        return "\(self.action.rawValue):\(self.target)@\(when)" + (self.length.map { "/\(DurationParser.format($0))" } ?? "")
    }

    /// The times, from the start of the load, at which the fault begins within `duration`.
    public func starts(within duration: Duration) -> [Duration] {
        guard let every else { return self.at < duration ? [self.at] : [] }
        return Array(sequence(first: self.at) { $0 + every }.prefix { $0 < duration })
    }
}

/// The faults of one drill, parsed from `--faults`.
public struct FaultSchedule: Sendable, Hashable {
    /// The faults, in the order written.
    public var faults: [Fault]

    /// Creates a `FaultSchedule` from its faults.
    public init(_ faults: [Fault]) {
        self.faults = faults
    }

    /// How long a suspend or fill lasts when `/FOR` is not given.
    public static let defaultLength: Duration = .seconds(10)

    /// Parses `kill:uppercase@30s,suspend:registry@60s/10s` (comma-separated faults; an empty
    /// text is a drill without faults, the baseline).
    /// - Throws: ``DrillError`` (`bad_schedule`) naming the fault, by its place and text, and
    ///   what is wrong with it.
    public static func parse(_ text: String) throws(DrillError) -> FaultSchedule {
        var faults: [Fault] = []
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        for (index, item) in items.enumerated() where !(item.isEmpty && items.count == 1) {
            faults.append(try Self.parseFault(item, place: index + 1))
        }
        return FaultSchedule(faults)
    }

    /// One `ACTION:TARGET@WHEN[/FOR]`.
    private static func parseFault(_ item: String, place: Int) throws(DrillError) -> Fault {
        func bad(_ why: String) -> DrillError {
            DrillError(.badSchedule, "--faults, fault \(place) '\(item)': \(why) (write ACTION:TARGET@AT[/FOR], e.g. kill:uppercase@30s/2s or suspend:registry@every 60s/10s)")
        }
        guard let colon = item.firstIndex(of: ":"), let at = item.firstIndex(of: "@"), colon < at else {
            throw bad("no ACTION:TARGET@WHEN")
        }
        let actionName = String(item[..<colon])
        guard let action = Fault.Action(rawValue: actionName) else {
            throw bad("unknown action '\(actionName)' (actions: \(Fault.Action.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let target = String(item[item.index(after: colon)..<at])
        guard !target.isEmpty, target.allSatisfy({ $0.isLetter || $0.isNumber || "-_.*".contains($0) }) else {
            throw bad("the target '\(target)' is not a service, route or role name")
        }
        var when = String(item[item.index(after: at)...])
        var length: Duration?
        if let slash = when.firstIndex(of: "/") {
            let text = String(when[when.index(after: slash)...])
            guard let parsed = DurationParser.parse(text), parsed > .zero else { throw bad("'\(text)' after / is not a duration (2s, 500ms)") }
            length = parsed
            when = String(when[..<slash])
        }
        var every: Duration?
        var start: Duration
        if when.hasPrefix("every") {
            let text = when.dropFirst("every".count).trimmingCharacters(in: .whitespaces)
            guard let period = DurationParser.parse(text), period > .zero else { throw bad("'\(text)' after every is not a duration (30s, 1m)") }
            every = period
            start = period
        } else {
            guard let parsed = DurationParser.parse(when) else { throw bad("'\(when)' after @ is not a time (30s, 1m) or every PERIOD") }
            start = parsed
        }
        if action == .suspend || action == .fill { length = length ?? Self.defaultLength }
        if let every, let length, length >= every {
            throw bad("it lasts \(DurationParser.format(length)) but comes back every \(DurationParser.format(every)): each must end before the next")
        }
        if action == .fill && target == "*" { throw bad("fill takes a route's name, whose drop folder it fills") }
        return Fault(action: action, target: target, at: start, length: length, every: every)
    }
}
