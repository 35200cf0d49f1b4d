public import SkyLib

/// For tests of timeouts: sleeps, then answers the document with `sleptMs` added.
///
/// It sleeps the document's `sleepMs` when it has one, else the configured default. The sleep
/// ends early when the caller's deadline passes (the task is cancelled).
public struct Slow: ServiceHandler {
    /// Milliseconds to sleep unless the document says otherwise.
    public let sleepMilliseconds: Int

    /// Creates a `Slow` from its parts.
    public init(sleepMilliseconds: Int = 200) {
        self.sleepMilliseconds = sleepMilliseconds
    }

    /// Sleeps, then answers the document with `sleptMs`. The sleep is a cancellable `Task.sleep`: a
    /// caller's deadline (or a stop past the drain limit) ends it at once, which is what the
    /// timeout tests rely on.
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        // Numbers may arrive as strings (CSV fields are strings).
        let milliseconds = request.payload["sleepMs"]?.looseInt ?? self.sleepMilliseconds
        try await Task.sleep(for: .milliseconds(max(0, milliseconds)))
        var payload = request.payload
        payload["sleptMs"] = .int(Int64(milliseconds))
        return ServiceResponse(payload: payload)
    }
}
