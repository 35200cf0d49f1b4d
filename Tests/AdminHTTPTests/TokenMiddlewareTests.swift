import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SkyLib
import AdminHTTP
import Testing

/// The shared token on real routers: Bearer everywhere, Basic only where pages ask for it
/// (the dashboard), `/health` always open.
struct TokenMiddlewareTests {
    func router(allowBasic: Bool) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: TokenMiddleware(token: "s3cret", allowBasic: allowBasic))
        router.get("page") { _, _ in "ok" }
        router.get("health") { _, _ in "ok" }
        return router
    }

    func status(_ router: Router<BasicRequestContext>, _ path: String, authorization: String?) async throws -> (HTTPResponse.Status, String?) {
        try await Application(router: router).test(.router) { client in
            var headers = HTTPFields()
            if let authorization { headers[.authorization] = authorization }
            return try await client.execute(uri: path, method: .get, headers: headers) { response in
                (response.status, response.headers[.wwwAuthenticate])
            }
        }
    }

    @Test func bearerAlwaysBasicOnlyWhenAllowedHealthOpen() async throws {
        let basic = "Basic " + Data("anyone:s3cret".utf8).base64EncodedString()
        let pages = self.router(allowBasic: true)
        #expect(try await self.status(pages, "/page", authorization: "Bearer s3cret").0 == .ok)
        #expect(try await self.status(pages, "/page", authorization: basic).0 == .ok)
        let refused = try await self.status(pages, "/page", authorization: nil)
        #expect(refused.0 == .unauthorized && refused.1?.hasPrefix("Basic realm=") == true)
        #expect(try await self.status(pages, "/health", authorization: nil).0 == .ok)

        let api = self.router(allowBasic: false)
        let basicRefused = try await self.status(api, "/page", authorization: basic)
        #expect(basicRefused.0 == .unauthorized && basicRefused.1 == nil)
        #expect(try await self.status(api, "/page", authorization: "Bearer wrong").0 == .unauthorized)
    }

    /// Issue 16: the length difference was folded into 8 bits, so the token followed by any
    /// 256 (or 512 …) bytes was accepted. Over the wire (Hummingbird's test client), both paths.
    @Test func theTokenWithAnythingAfterItIsRefused() async throws {
        let pages = self.router(allowBasic: true)
        for extra in [1, 255, 256, 512] {
            let longer = "s3cret" + String(repeating: "x", count: extra)
            #expect(try await self.status(pages, "/page", authorization: "Bearer " + longer).0 == .unauthorized, "\(extra) bytes more")
            let basic = "Basic " + Data("anyone:\(longer)".utf8).base64EncodedString()
            #expect(try await self.status(pages, "/page", authorization: basic).0 == .unauthorized, "Basic, \(extra) bytes more")
        }
        #expect(try await self.status(pages, "/page", authorization: "Bearer s3cre").0 == .unauthorized)
        #expect(try await self.status(pages, "/page", authorization: "Bearer s3cret").0 == .ok)
    }
}
