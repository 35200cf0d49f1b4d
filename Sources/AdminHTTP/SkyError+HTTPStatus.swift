public import Hummingbird
public import SkyLib
import NIOCore

extension SkyError {
    /// The HTTP status an error is answered with.
    public var httpStatus: HTTPResponse.Status {
        switch self.code {
        case .badRequest, .invalidRoute: .badRequest
        case .routeNotFound, .notFound: .notFound
        case .conflict: .conflict
        case .rateLimited: .tooManyRequests
        case .payloadTooLarge: .contentTooLarge
        case .rejected: .unprocessableContent
        case .stepFailed, .badResponse, .connectionFailed: .badGateway
        case .deadlineExceeded: .gatewayTimeout
        case .noInstance, .draining, .registry, .circuitOpen, .cancelled: .serviceUnavailable
        case .unauthorized: .unauthorized
        default: .internalServerError
        }
    }
}
