public import Hummingbird
import SkyLib

/// Requires the cluster's shared token on every request but `GET /health`: as
/// `Authorization: Bearer TOKEN`, or (for pages a browser opens, like the dashboard) as the
/// password of HTTP Basic authentication, with any user name.
public struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The shared secret requests must carry.
    public let token: String
    /// Whether to accept Basic authentication and ask browsers for it.
    public let allowBasic: Bool

    /// Creates a `TokenMiddleware` from its parts.
    public init(token: String, allowBasic: Bool = false) {
        self.token = token
        self.allowBasic = allowBasic
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization]
        if request.uri.path == "/health" || BearerToken.matches(header, token: self.token)
            || (self.allowBasic && BearerToken.matchesBasic(header, token: self.token))
        {
            return try await next(request, context)
        }
        var response = Response.error(SkyError(.unauthorized, "missing or wrong token: send Authorization: Bearer <SKYNET_TOKEN>"))
        if self.allowBasic { response.headers[.wwwAuthenticate] = "Basic realm=\"skynet\", charset=\"UTF-8\"" }
        return response
    }
}
