public import Foundation
import Synchronization

/// The metrics of one process: named counters served at `/debug/vars` (the original Skynet's
/// expvar) and the swift-metrics backend the node chose (``backend``), whose instruments
/// `/metrics` shows with every `/debug/vars` counter beside them.
///
/// Counter names follow the original: `<name>-processed`, `<name>-errors`, plus
/// `<name>-retries`, `<name>-inflight`, `<name>-async-dropped`. Hot paths hold a
/// ``CounterCell`` from ``cell(_:)`` and add to it without a lookup or a lock; `add(_:_:)` by
/// name is for everything else.
public final class Counters: Sendable {
    private let cells = Mutex<[String: CounterCell]>([:])
    /// Where swift-metrics instruments (histograms, labelled counters, gauges) record.
    public let backend: any MetricsBackend
    /// When the process started counting.
    public let startedAt = Date()
    /// Long work in flight (CSV files, drop folders' backlogs), for `/debug/progress`.
    public let progress = ProgressBoard()

    /// Creates a `Counters` recording swift-metrics instruments into `backend` (nowhere unless
    /// given: the node runtime gives the one the process was started with).
    public init(backend: any MetricsBackend = NoMetricsBackend()) {
        self.backend = backend
    }

    /// The cell counting `name`, made on first use; keep it to count without a lookup.
    public func cell(_ name: String) -> CounterCell {
        self.cells.withLock { cells in
            if let cell = cells[name] { return cell }
            let cell = CounterCell()
            cells[name] = cell
            return cell
        }
    }

    /// Shows `cell`, made elsewhere, as `name` (a part made before these counters, such as a
    /// metrics backend counting its own exports).
    public func include(_ cell: CounterCell, as name: String) {
        self.cells.withLock { $0[name] = cell }
    }

    /// Adds `amount` (may be negative) to `name`.
    public func add(_ name: String, _ amount: Int64 = 1) {
        self.cell(name).add(amount)
    }

    /// The value of `name` (0 when never counted).
    public func value(_ name: String) -> Int64 {
        self.cells.withLock { $0[name] }?.value ?? 0
    }

    /// Every counter.
    public func snapshot() -> [String: Int64] {
        self.cells.withLock { $0 }.mapValues(\.value)
    }

    /// The `/debug/vars` document: every counter plus `uptimeSeconds` and `pid`.
    public func debugVars(extra: [String: JSONValue] = [:]) -> JSONValue {
        var fields = self.snapshot().mapValues { JSONValue.int($0) }
        fields["uptimeSeconds"] = .double(self.uptimeSeconds)
        fields["pid"] = .int(Int64(ProcessInfo.processInfo.processIdentifier))
        for (key, value) in extra { fields[key] = value }
        return .object(fields)
    }

    /// Seconds since the process started counting, to the millisecond.
    public var uptimeSeconds: Double {
        (Date().timeIntervalSince(self.startedAt) * 1000).rounded() / 1000
    }

    /// The `/metrics` page: the backend's instruments, then every `/debug/vars` counter as
    /// `skynet_var{name="…"}` so nothing counted is missing from either.
    public func prometheusText(extra: [String: JSONValue] = [:]) -> [UInt8] {
        var text = self.backend.scrapeText()
        // HELP before TYPE for each family: promtool (and scrapers that lint) want both.
        var lines = "# HELP skynet_uptime_seconds Seconds since this process started.\n"
        lines += "# TYPE skynet_uptime_seconds gauge\nskynet_uptime_seconds \(self.uptimeSeconds)\n"
        lines += "# HELP skynet_var Every /debug/vars counter, by name (the same figures as /debug/vars).\n"
        lines += "# TYPE skynet_var gauge\n"
        var vars = self.snapshot().mapValues(Double.init)
        for (key, value) in extra {
            switch value {
            case .int(let number): vars[key] = Double(number)
            case .double(let number): vars[key] = number
            default: continue
            }
        }
        for (name, value) in vars.sorted(by: { $0.key < $1.key }) {
            lines += "skynet_var{name=\"\(Self.escapeLabel(name))\"} \(value)\n"
        }
        text.append(contentsOf: lines.utf8)
        return text
    }

    private static func escapeLabel(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// One counter: an atomic integer, shared by reference.
public final class CounterCell: Sendable {
    private let atomic = Atomic<Int64>(0)

    /// Creates a `CounterCell` with the defaults.
    public init() {}

    /// Adds `amount` (may be negative).
    public func add(_ amount: Int64 = 1) {
        self.atomic.wrappingAdd(amount, ordering: .relaxed)
    }

    /// The value now.
    public var value: Int64 { self.atomic.load(ordering: .relaxed) }
}
