/// The initiator an input came through: where a failed input is redriven back to.
public enum InputSource: String, Sendable, Hashable, CaseIterable {
    /// A file dropped into a folder.
    case files
    /// A row of a CSV file.
    case csv
    /// A message on a STOMP destination.
    case stomp
    /// An HTTP request to `POST /routes/NAME`.
    case http
}
