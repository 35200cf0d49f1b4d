public import Logging
import Synchronization

/// A log level shared by many loggers, changeable at run time (SIGUSR1 raises, SIGUSR2 lowers).
///
/// Made once by whoever bootstraps logging (the `sky` tool, a service's `main`) and handed to
/// every ``SkyLogHandler`` and to the signal handler; nothing reaches it through a global.
public final class LogLevelControl: Sendable {

    private static let levels = Logger.Level.allCases
    private let index: Atomic<Int>

    /// - Parameter level: the level to start at.
    public init(_ level: Logger.Level = .info) {
        self.index = Atomic(Self.levels.firstIndex(of: level)!)
    }

    /// The level now.
    public var level: Logger.Level {
        get { Self.levels[self.index.load(ordering: .relaxed)] }
        set { self.index.store(Self.levels.firstIndex(of: newValue)!, ordering: .relaxed) }
    }

    /// More detail: `info` → `debug` → `trace`.
    @discardableResult
    public func raise() -> Logger.Level {
        self.step(by: -1)
    }

    /// Less detail: `info` → `notice` → `warning` …
    @discardableResult
    public func lower() -> Logger.Level {
        self.step(by: 1)
    }

    private func step(by delta: Int) -> Logger.Level {
        var current = self.index.load(ordering: .relaxed)
        while true {
            let next = min(max(current + delta, 0), Self.levels.count - 1)
            let (exchanged, original) = self.index.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return Self.levels[next] }
            current = original
        }
    }
}

/// Writes log lines to standard error like `StreamLogHandler`, with the level taken from a
/// ``LogLevelControl`` so signals can change it for every logger at once.
///
/// Metadata is kept here and handed to the stream only when a line is written:
/// `StreamLogHandler` formats its metadata on every change, and frameworks set metadata on a
/// logger per request (Hummingbird's request id), which showed in the router's profile.
public struct SkyLogHandler: LogHandler {
    private var stream: StreamLogHandler
    private let control: LogLevelControl
    public var metadata: Logger.Metadata = [:]

    /// Creates a `SkyLogHandler` from its parts.
    public init(label: String, control: LogLevelControl) {
        var stream = StreamLogHandler.standardError(label: label)
        stream.logLevel = .trace
        self.stream = stream
        self.control = control
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { self.stream.metadataProvider }
        set { self.stream.metadataProvider = newValue }
    }

    /// The shared level; setting it changes it for the whole process.
    public var logLevel: Logger.Level {
        get { self.control.level }
        set { self.control.level = newValue }
    }

    /// This handler's metadata for `key`, merged into every line it writes.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !self.metadata.isEmpty {
            event.metadata = self.metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        self.stream.log(event: event)
    }
}
