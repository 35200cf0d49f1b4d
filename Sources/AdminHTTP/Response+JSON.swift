public import Hummingbird
import HTTPTypes
public import SkyLib
import NIOCore

extension Response {
    /// A JSON response with `Content-Type: application/json`: the body is `value` written by
    /// `JSONWriter`, and `headers` are kept (their content type, if any, replaced).
    public static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        // Appended when absent rather than set: a set searches and rewrites the fields, and
        // every answer of the HTTP initiator comes through here.
        if headers[.contentType] == nil {
            headers.append(HTTPField(name: .contentType, value: "application/json"))
        } else {
            headers[.contentType] = "application/json"
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: JSONWriter.buffer(value)))
    }

    /// The JSON error body of `error`, with the status its code maps to.
    public static func error(_ error: SkyError, headers: HTTPFields = [:]) -> Response {
        .json(error.json, status: error.httpStatus, headers: headers)
    }
}
