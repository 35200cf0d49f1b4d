public import Hummingbird
public import SkyLib
import NIOCore

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
