public import Hummingbird
public import SkyLib
import NIOCore

extension Response {
    /// A JSON response with `Content-Type: application/json`.
    public static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: JSONWriter.buffer(value)))
    }

    /// The JSON error body of `error`, with the status its code maps to.
    public static func error(_ error: SkyError, headers: HTTPFields = [:]) -> Response {
        .json(error.json, status: error.httpStatus, headers: headers)
    }
}

extension SkyError {
    /// The HTTP status an error is answered with.
    public var httpStatus: HTTPResponse.Status {
        switch self.code {
        case .badRequest, .invalidRoute: .badRequest
        case .routeNotFound: .notFound
        case .payloadTooLarge: .contentTooLarge
        case .stepFailed, .badResponse, .connectionFailed: .badGateway
        case .deadlineExceeded: .gatewayTimeout
        case .noInstance, .draining, .registry: .serviceUnavailable
        case .unauthorized: .unauthorized
        default: .internalServerError
        }
    }
}

extension Request {
    /// Collects the body and parses it as JSON.
    /// - Throws: ``SkyError``: `.payloadTooLarge` over `limit` bytes, `.badRequest` with the
    ///   parser's line and column for malformed JSON.
    public mutating func jsonBody(limit: Int) async throws(SkyError) -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await self.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw SkyError(.payloadTooLarge, "request body is over the limit of \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw SkyError(.payloadTooLarge, "request body is over the limit of \(limit) bytes")
        } catch {
            // Not a size problem: a malformed chunk, a body cut short, a connection gone. Saying
            // "too large" here (as this once did) sent people looking for the wrong fix.
            throw SkyError(.badRequest, "request body could not be read (malformed chunked encoding, or shorter than its Content-Length): \(error)")
        }
        guard buffer.readableBytes > 0 else {
            throw SkyError(.badRequest, "request body is empty; send a JSON document")
        }
        do {
            return try buffer.withUnsafeReadableBytes { bytes throws(JSONParseError) in try JSONParser.parse(bytes) }
        } catch {
            throw SkyError(.badRequest, "malformed JSON: \(error)")
        }
    }
}
