public import RegistryKit
import SkyLib
import Synchronization

/// A registry that lives in this process's memory: every role, with the semantics of the two
/// real drivers (it passes the same conformance suite), and nothing kept once the process ends.
///
/// For unit tests that want a registry without a file or a server, and for `sky route test`,
/// whose dedupe routes then deduplicate as a router would. Not for a cluster: no other process
/// can see it. Each role is implemented in its own file (`MemoryRegistry+NodeDirectory.swift`
/// …), over its part of one locked ``State``.
public final class MemoryRegistry: Registry {
    /// Everything the registry holds; each role reads and writes its own part, under one lock,
    /// so every call is atomic as a real driver's transaction is.
    struct State {
        var nodes: [String: NodeRecord] = [:]
        var events: [RegistryEvent] = []
        var spans: [Span] = []
        var leases: [String: (holder: String, expiresAt: Double)] = [:]
        var routes: [String: StoredRoute] = [:]
        var commands: [String: NodeCommand] = [:]
        var counts: [String: [String: Int64]] = [:]
        var dedupe: [String: DedupeEntry] = [:]
        var failed: [String: FailedItem] = [:]
    }

    /// One dedupe key: running (its owner until `runningUntil`) or done (its answer until `expiresAt`).
    struct DedupeEntry {
        var done: Bool
        var owner: String
        var answer: JSONValue?
        var expiresAt: Double
        var runningUntil: Double
    }

    /// The one lock every call takes, held for the call's whole decision: that is what makes a
    /// claim exclusive here, as a transaction does in SQLite.
    let state = Mutex(State())
    /// How logs name it.
    public let name: String

    /// Creates an empty registry; `name` is how logs call it (`memory:NAME`).
    public init(name: String = "test") {
        self.name = name
    }

    public var displayName: String { "memory:\(self.name)" }

    /// Events kept, as the SQLite driver keeps them.
    static let eventsKept = 10_000
    /// Spans kept, as the SQLite driver keeps them.
    static let spansKept = 100_000
}
