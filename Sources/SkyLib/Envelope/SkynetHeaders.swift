public import HTTPTypes

/// The HTTP headers of the Skynet protocol (see `docs/PROTOCOL.md`).
public enum SkynetHeaders {
    /// Milliseconds the caller will still wait; a service stops working on the call after it.
    public static let timeout = HTTPField.Name("Skynet-Timeout-Ms")!
    /// The request's id.
    public static let requestID = HTTPField.Name("Skynet-Request-Id")!
    /// The request's trace id.
    public static let traceID = HTTPField.Name("Skynet-Trace-Id")!
    /// `1` asks for this request's trace to be recorded whatever the sampling rate.
    public static let trace = HTTPField.Name("Skynet-Trace")!
    /// Step errors recorded under `errOnFail: false`, as a JSON array (ASCII only).
    public static let errors = HTTPField.Name("Skynet-Errors")!
    /// `true` on the answer to a duplicate of a request already answered (`dedupe:` routes):
    /// the first answer, the steps not run again.
    public static let deduplicated = HTTPField.Name("Skynet-Deduplicated")!
    /// What a dashboard button asks for (`redrive`): a browser sends it only from a page's own
    /// script, never with a form another site posts, so the dashboard's actions refuse requests
    /// without it.
    public static let action = HTTPField.Name("Skynet-Action")!
}
