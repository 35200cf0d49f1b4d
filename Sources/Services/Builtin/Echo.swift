public import SkyLib

/// Answers the document unchanged.
public struct Echo: ServiceHandler {
    /// Creates an `Echo` with the defaults.
    public init() {}

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Answers the document as it came: a step that changes nothing, for tests and route plumbing.
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        ServiceResponse(payload: request.payload)
    }
}
