public import SkyLib

/// Adds `words`: the number of words (runs of non-whitespace) in the string field `text`.
public struct WordCount: ServiceHandler {
    /// Creates a `WordCount` with the defaults.
    public init() {}

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Answers the document with `words` set; a document without a string `text` is the
    /// caller's error (`bad_request`, not retried: the same document would fail again).
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        guard case .object(var fields) = request.payload, let text = fields["text"]?.stringValue else {
            throw SkyError(.badRequest, "wordcount needs an object with a string field \"text\"", service: "wordcount")
        }
        fields["words"] = .int(Int64(text.split(whereSeparator: { $0.isWhitespace }).count))
        return ServiceResponse(payload: .object(fields))
    }
}
