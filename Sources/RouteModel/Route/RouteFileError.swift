import SkyLib
/// Why a route file was rejected: the file, the line and column, and a reason a person understands.
public struct RouteFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file's path as given.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// 1-based column, when known.
    public var column: Int?
    /// What is wrong.
    public var reason: String

    /// Creates a `RouteFileError` from its parts.
    public init(file: String, line: Int?, column: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
    }

    /// `FILE:LINE:COLUMN: reason`, the form compilers use, so editors can jump to it.
    public var description: String {
        var location = self.file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        return "\(location): \(self.reason)"
    }
}
