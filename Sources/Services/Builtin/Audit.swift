public import Logging
public import SkyLib

/// Logs the document with its request id and route, and answers it unchanged.
/// Meant to run out-of-band (`async: true`).
public struct Audit: ServiceHandler {
    /// Where the documents are written (at info level, one line each).
    private let logger: Logger

    /// Creates an `Audit` from its parts.
    public init(logger: Logger) {
        self.logger = logger
    }

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Logs the document and answers it unchanged: the route's document is not touched by an
    /// out-of-band audit.
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        self.logger.info(
            "audit",
            metadata: ["request": "\(request.id)", "route": "\(request.route)", "trace": "\(request.trace.traceID)", "document": "\(request.payload)"]
        )
        return ServiceResponse(payload: request.payload)
    }
}
