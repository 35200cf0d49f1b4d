public import HTTPTypes
public import Hummingbird
import SkyLib

/// The paths a listener serves and with which methods, recorded where its routes are added,
/// so a known path asked with another method is answered `405 Method Not Allowed` with an
/// `Allow` header instead of a misleading 404. Path segments starting with `:` match any one
/// segment (`routes/:name`).
public final class EndpointTable: Sendable {
    private let entries = Locked<[(method: HTTPRequest.Method, segments: [Substring])]>([])

    /// Creates an `EndpointTable` with the defaults.
    public init() {}

    /// Records that `path` answers `method` (HEAD comes with GET).
    public func record(_ method: HTTPRequest.Method, _ path: String) {
        let segments = path.split(separator: "/")
        self.entries.withLock { $0.append((method, segments)) }
    }

    /// The methods `path` answers, or `nil` when no recorded path matches it.
    public func methods(for path: String) -> Set<HTTPRequest.Method>? {
        let asked = path.split(separator: "/")
        let matching = self.entries.withLock { entries in
            entries.filter { entry in
                entry.segments.count == asked.count && zip(entry.segments, asked).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
            }
        }
        guard !matching.isEmpty else { return nil }
        var methods = Set(matching.map(\.method))
        if methods.contains(.get) { methods.insert(.head) }
        return methods
    }
}

/// Answers 405 with `Allow` when a request's path is served but not with its method.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The paths served and their methods, for the `Allow` header.
    public let table: EndpointTable

    /// Creates a `MethodNotAllowedMiddleware` from its parts.
    public init(table: EndpointTable) {
        self.table = table
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            guard response.status == .notFound else { return response }
            return self.notAllowed(request) ?? response
        } catch let error as HTTPError where error.status == .notFound {
            if let response = self.notAllowed(request) { return response }
            throw error
        }
    }

    private func notAllowed(_ request: Request) -> Response? {
        guard let methods = self.table.methods(for: request.uri.path), !methods.contains(request.method) else { return nil }
        let allow = methods.map(\.rawValue).sorted().joined(separator: ", ")
        var response = Response.error(SkyError(.badRequest, "\(request.uri.path) does not take \(request.method.rawValue); it takes \(allow)"))
        response.status = .methodNotAllowed
        response.headers[.allow] = allow
        return response
    }
}
