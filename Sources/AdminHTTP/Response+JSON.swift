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
