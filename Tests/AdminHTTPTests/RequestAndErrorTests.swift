import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SkyLib
import AdminHTTP
import Testing

/// How a request's JSON body is read and how errors are answered, through a Hummingbird
/// router (the same one every listener builds): the messages a caller sees when they got it
/// wrong, and the statuses clients and load balancers act on.
struct RequestAndErrorTests {
    /// A router echoing the parsed body, with a 64-byte limit.
    func echo() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("echo") { request, _ -> Response in
            var request = request
            do throws(SkyError) {
                return .json(try await request.jsonBody(limit: 64))
            } catch {
                return .error(error)
            }
        }
        return router
    }

    func post(_ body: String) async throws -> (HTTPResponse.Status, JSONValue) {
        try await Application(router: self.echo()).test(.router) { client in
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: body)) { response in
                (response.status, try JSONParser.parse(Array(buffer: response.body)))
            }
        }
    }

    /// A good document comes back as parsed; an empty body, malformed JSON (with where it
    /// broke) and a body over the limit each get their own code and message.
    @Test func bodiesAreParsedOrRefusedWithTheReason() async throws {
        let good = try await self.post(#"{"a":[1,2.5,"x"]}"#)
        #expect(good.0 == .ok && good.1 == ["a": [1, 2.5, "x"]])

        let empty = try await self.post("")
        #expect(empty.0 == .badRequest && empty.1["error"]?["code"] == "bad_request")
        #expect(empty.1["error"]?["message"]?.stringValue?.contains("empty") == true)

        let malformed = try await self.post("{\n\"a\": tru}")
        #expect(malformed.0 == .badRequest)
        let message = malformed.1["error"]?["message"]?.stringValue ?? ""
        #expect(message.hasPrefix("malformed JSON") && message.contains("line 2"), "\(message)")

        let large = try await self.post(#"{"a":""# + String(repeating: "x", count: 100) + #""}"#)
        #expect(large.0 == .contentTooLarge && large.1["error"]?["code"] == "payload_too_large")
        #expect(large.1["error"]?["message"]?.stringValue?.contains("64 bytes") == true)
    }

    /// The statuses clients act on: retry later (503, 429), the caller's fault (4xx), a service
    /// behind us failed (502, 504). A stop is a 503 like draining, never a 500: a client retries
    /// it elsewhere.
    @Test func errorCodesMapToTheStatusesClientsActOn() {
        let expected: [(SkyError.Code, HTTPResponse.Status)] = [
            (.badRequest, .badRequest), (.invalidRoute, .badRequest), (.routeNotFound, .notFound), (.notFound, .notFound),
            (.conflict, .conflict), (.rateLimited, .tooManyRequests), (.payloadTooLarge, .contentTooLarge),
            (.rejected, .unprocessableContent), (.stepFailed, .badGateway), (.badResponse, .badGateway),
            (.connectionFailed, .badGateway), (.deadlineExceeded, .gatewayTimeout), (.noInstance, .serviceUnavailable),
            (.draining, .serviceUnavailable), (.registry, .serviceUnavailable), (.circuitOpen, .serviceUnavailable),
            (.cancelled, .serviceUnavailable), (.unauthorized, .unauthorized), (.serviceError, .internalServerError), (.configuration, .internalServerError),
        ]
        for (code, status) in expected {
            #expect(SkyError(code, "x").httpStatus == status, "\(code)")
        }
        let retryAfter = HTTPField.Name("Retry-After")!
        let response = Response.error(SkyError(.rateLimited, "route orders: over 10/s"), headers: [retryAfter: "1"])
        #expect(response.status == .tooManyRequests)
        #expect(response.headers[.contentType] == "application/json" && response.headers[retryAfter] == "1")
    }

    /// Paths with `:name` segments match any one segment, HEAD comes with GET, and a path that
    /// is not recorded has no methods (so it stays a 404).
    @Test func theEndpointTableMatchesSegments() {
        let table = EndpointTable()
        table.record(.post, "routes/:name")
        table.record(.get, "routes")
        #expect(table.methods(for: "/routes/orders") == [.post])
        #expect(table.methods(for: "/routes") == [.get, .head])
        #expect(table.methods(for: "/routes/orders/extra") == nil)
        #expect(table.methods(for: "/other") == nil)
    }
}
