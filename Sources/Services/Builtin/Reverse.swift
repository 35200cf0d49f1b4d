public import SkyLib

/// Reverses every string in the document (values, not keys), character by character.
public struct Reverse: ServiceHandler {
    /// Creates a `Reverse` with the defaults.
    public init() {}

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Reverses every string in the document (keys stay as they are).
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        ServiceResponse(payload: request.payload.mappingStrings { String($0.reversed()) })
    }
}
