/// Why a drill could not start or go on: a fault schedule that does not parse, a fault the
/// drill refuses (its target is not part of the cluster on this machine), a route it cannot
/// drive.
public struct DrillError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it is, for scripts.
    public enum Code: String, Sendable, Hashable {
        /// `--faults` does not parse; the message names the item and what is wrong with it.
        case badSchedule = "bad_schedule"
        /// A fault's target is not something the drill may touch, or cannot be found.
        case refused
        /// The route or its source cannot be driven (unknown route, no reply queue …).
        case badLoad = "bad_load"
    }

    /// What kind of problem it is.
    public var code: Code
    /// What was wrong and where, for a person.
    public var message: String

    /// Creates a `DrillError` from its parts.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message, with its code.
    public var description: String { "\(self.message) (\(self.code.rawValue))" }
}
