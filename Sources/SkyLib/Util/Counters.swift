public import Foundation
import Synchronization

/// Named counters of one process, served at `/debug/vars` (the original Skynet's expvar).
///
/// Counter names follow the original: `<name>-processed`, `<name>-errors`, plus
/// `<name>-retries`, `<name>-inflight`, `<name>-async-dropped`.
public final class Counters: Sendable {
    private let values = Mutex<[String: Int64]>([:])
    /// When the process started counting.
    public let startedAt = Date()

    public init() {}

    /// Adds `amount` (may be negative) to `name`.
    public func add(_ name: String, _ amount: Int64 = 1) {
        self.values.withLock { $0[name, default: 0] += amount }
    }

    /// The value of `name` (0 when never counted).
    public func value(_ name: String) -> Int64 {
        self.values.withLock { $0[name] ?? 0 }
    }

    /// Every counter.
    public func snapshot() -> [String: Int64] {
        self.values.withLock { $0 }
    }

    /// The `/debug/vars` document: every counter plus `uptimeSeconds` and `pid`.
    public func debugVars(extra: [String: JSONValue] = [:]) -> JSONValue {
        var fields = self.snapshot().mapValues { JSONValue.int($0) }
        fields["uptimeSeconds"] = .double((Date().timeIntervalSince(self.startedAt) * 1000).rounded() / 1000)
        fields["pid"] = .int(Int64(ProcessInfo.processInfo.processIdentifier))
        for (key, value) in extra { fields[key] = value }
        return .object(fields)
    }
}
