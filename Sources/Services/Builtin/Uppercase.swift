import Foundation
public import SkyLib

/// Upper-cases every string in the document (values, not keys), however deep.
public struct Uppercase: ServiceHandler {
    /// Creates an `Uppercase` with the defaults.
    public init() {}

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Upper-cases every string in the document (keys stay as they are).
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        ServiceResponse(payload: request.payload.mappingStrings { $0.uppercased() })
    }
}
