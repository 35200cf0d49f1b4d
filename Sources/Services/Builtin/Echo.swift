public import SkyLib

/// Answers the document unchanged.
public struct Echo: ServiceHandler {
    public init() {}

    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        ServiceResponse(payload: request.payload)
    }
}
