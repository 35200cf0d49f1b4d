public import Foundation
public import SkyLib

/// A route file (or pushed route) a router refused, kept until a good version replaces it:
/// what `GET /routes` lists under `problems`, `sky routes status` prints and the dashboard shows.
/// The router meanwhile serves the last good revision, if it had one.
public struct RouteProblem: Sendable, Hashable {
    /// Why it was refused, with file and line.
    public var error: RouteFileError
    /// The route the file held when it was last good, if it ever was.
    public var route: String?
    /// The revision still served for it (the last good one); `nil` when none is.
    public var serving: Int?
    /// When it was refused.
    public var at: Date

    /// Creates a `RouteProblem` from its parts.
    public init(error: RouteFileError, route: String?, serving: Int?, at: Date) {
        self.error = error
        self.route = route
        self.serving = serving
        self.at = at
    }

    /// `{"file", "line", "column", "reason", "message", "route", "serving", "at"}`; `message` is
    /// the `FILE:LINE: reason` form.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "file": .string(self.error.file), "reason": .string(self.error.reason), "message": .string(self.error.description),
            "at": .string(ISO8601DateFormatter().string(from: self.at)),
        ]
        if let line = self.error.line { fields["line"] = .int(Int64(line)) }
        if let column = self.error.column { fields["column"] = .int(Int64(column)) }
        if let route { fields["route"] = .string(route) }
        if let serving { fields["serving"] = .int(Int64(serving)) }
        return .object(fields)
    }

    /// Reads ``json``; `nil` when it names no file.
    public init?(json: JSONValue) {
        guard let file = json["file"]?.stringValue else { return nil }
        self.error = RouteFileError(
            file: file, line: json["line"]?.intValue.map { Int($0) }, column: json["column"]?.intValue.map { Int($0) },
            reason: json["reason"]?.stringValue ?? ""
        )
        self.route = json["route"]?.stringValue
        self.serving = json["serving"]?.intValue.map { Int($0) }
        self.at = json["at"]?.stringValue.flatMap { ISO8601DateFormatter().date(from: $0) } ?? Date(timeIntervalSince1970: 0)
    }
}
