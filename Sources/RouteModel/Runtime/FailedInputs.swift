public import SkyLib

/// An input that failed its route, as an initiator reports it to ``FailedInputs``.
public struct FailedInput: Sendable {
    /// How the input is known again when it fails again after a redrive.
    public enum Identity: Sendable, Hashable {
        /// A key from where it came from (a file's name; a CSV file and line): the same key gives
        /// the same item.
        case stable(String)
        /// The id a redrive gave it (a STOMP message put back carries its item's id).
        case given(String)
        /// A new item each time (HTTP requests).
        case fresh
    }

    /// The route it ran.
    public var route: String
    /// The initiator it came through.
    public var source: InputSource
    /// The folder or destination (`http` for HTTP).
    public var resource: String
    /// How it is known again.
    public var identity: Identity
    /// The input's bytes (kept when small enough), if the initiator has them.
    public var input: [UInt8]?
    /// What a redrive needs beside the input (`file`, `line`, `header`, `headers`, `orderKey`).
    public var details: [String: String]
    /// Why it failed.
    public var error: SkyError
    /// Its trace, when traced.
    public var traceID: String?

    /// Creates a `FailedInput` from its parts.
    public init(
        route: String, source: InputSource, resource: String, identity: Identity, input: [UInt8]?, details: [String: String] = [:], error: SkyError,
        traceID: String? = nil
    ) {
        self.route = route
        self.source = source
        self.resource = resource
        self.identity = identity
        self.input = input
        self.details = details
        self.error = error
        self.traceID = traceID
    }
}

/// Where initiators report failed inputs, so they can be seen and sent again from one place
/// (`sky failed`). The node keeps them in the registry; reporting never waits for it.
///
/// Reporting is beside, not instead of, where each source parks its failures (`.failed/`,
/// `rejects.csv`, the dead-letter queue): those stay the record of last resort.
public protocol FailedInputs: Sendable {
    /// Records a failed input (buffered; written to the registry in the background).
    func failed(_ input: FailedInput)

    /// Whether any input this node put back for a redrive is still waiting for its outcome:
    /// initiators call ``succeeded(route:source:resource:identity:)`` only then.
    var redrivesInFlight: Bool { get }

    /// An input ran well; if it was a redrive this node put back, its item is done.
    func succeeded(route: String, source: InputSource, resource: String, identity: FailedInput.Identity)

    /// Waits for what becomes of a failed input that holds its lane (`onFailure: hold`), after
    /// it was reported with ``failed(_:)``: asked to be redriven (claimed for this node, to run
    /// again in place), dropped, or the source stopping (`isStopping`, checked while waiting).
    func decision(route: String, source: InputSource, resource: String, identity: FailedInput.Identity, isStopping: @escaping @Sendable () -> Bool) async -> HeldDecision
}

/// What becomes of an input that holds its lane (`onFailure: hold`).
public enum HeldDecision: Sendable, Equatable {
    /// Asked to be redriven, and claimed by this node: run it again, in its place.
    case runAgain
    /// Dropped with this reason: it ends as a failure, and the lane goes on.
    case dropped(String)
    /// The source is stopping: leave the input as a crash would (it runs again at the next start).
    case stopped
}

/// Failed inputs go nowhere (tests, `sky route test`).
public struct NoFailedInputs: FailedInputs {
    /// Creates a `NoFailedInputs`.
    public init() {}
    public func failed(_ input: FailedInput) {}
    public var redrivesInFlight: Bool { false }
    public func succeeded(route: String, source: InputSource, resource: String, identity: FailedInput.Identity) {}
    /// Nobody can redrive or drop here: a held input waits until its source stops.
    public func decision(route: String, source: InputSource, resource: String, identity: FailedInput.Identity, isStopping: @escaping @Sendable () -> Bool) async -> HeldDecision {
        while !isStopping() && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
        return .stopped
    }
}

/// A failed input to put back where it came from, as the node hands it to the initiator that
/// runs its source.
public struct Redrive: Sendable {
    /// The failed item's id: the input carries it, so a new failure is the same item.
    public var id: String
    /// The route it runs.
    public var route: String
    /// The initiator it came through.
    public var source: InputSource
    /// The folder or destination.
    public var resource: String
    /// The input as text, when it was kept.
    public var input: String?
    /// Its size in bytes.
    public var inputBytes: Int
    /// What the source recorded with it (`file`, `line`, `header`, `headers`).
    public var details: [String: String]

    /// Creates a `Redrive` from its parts.
    public init(id: String, route: String, source: InputSource, resource: String, input: String?, inputBytes: Int, details: [String: String]) {
        self.id = id
        self.route = route
        self.source = source
        self.resource = resource
        self.input = input
        self.inputBytes = inputBytes
        self.details = details
    }
}

/// An initiator that can put its failed inputs back (the file into its folder, rows as a new
/// CSV file, a message onto its destination).
public protocol Redriving: Sendable {
    /// Puts `items` back; they then run as new input does.
    /// - Returns: per item id, why it could not be put back (the others were).
    func redrive(_ items: [Redrive]) async -> [String: String]
}
