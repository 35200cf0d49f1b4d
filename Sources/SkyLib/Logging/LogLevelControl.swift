public import Logging
import Synchronization

/// The process-wide log level, changeable at run time (SIGUSR1 raises, SIGUSR2 lowers).
public final class LogLevelControl: Sendable {
    /// The one control of this process, read by every ``SkyLogHandler``.
    public static let shared = LogLevelControl()

    private static let levels = Logger.Level.allCases
    private let index = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)

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
public struct SkyLogHandler: LogHandler {
    private var stream: StreamLogHandler
    private let control: LogLevelControl

    public init(label: String, control: LogLevelControl = .shared) {
        self.stream = StreamLogHandler.standardError(label: label)
        self.control = control
        self.stream.logLevel = .trace
    }

    public var metadata: Logger.Metadata {
        get { self.stream.metadata }
        set { self.stream.metadata = newValue }
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

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.stream[metadataKey: key] }
        set { self.stream[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        self.stream.log(event: event)
    }
}
