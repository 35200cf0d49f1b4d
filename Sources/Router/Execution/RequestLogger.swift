import Logging
import SkyLib
import RouteModel

/// A logger for one request that adds `request` and `route` metadata only when a message is
/// actually written.
///
/// Setting metadata on a `Logger` copies the handler's metadata for every request, and the
/// router's profile showed it; almost no request logs anything, so the metadata is attached
/// inside the message's (lazy) metadata instead.
struct RequestLogger: Sendable {
    /// The router's logger.
    let base: Logger
    /// Added as `request` to every line about this request; spelled only when a line is.
    let requestID: LazyIdentifier
    /// Added as `route` to every line about this request.
    let route: String

    /// A warning about this request, its id and route attached.
    func warning(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        self.base.warning(message(), metadata: self.with(metadata()))
    }

    /// A debug line about this request, its id and route attached (built only when debug is on).
    func debug(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        self.base.debug(message(), metadata: self.with(metadata()))
    }

    /// `metadata` with the request's id and route added.
    private func with(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var metadata = metadata
        metadata["request"] = "\(self.requestID)"
        metadata["route"] = "\(self.route)"
        return metadata
    }
}
