public import SkyLib

/// Answers the document unchanged.
public struct Echo: ServiceHandler {
    public init() {}

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        ServiceResponse(payload: request.payload)
    }
}
