public import SkyLib
import Synchronization

/// For tests of retries: fails the first N calls of each request id with a retryable error,
/// then answers the document with `attempts` added (how many calls this request took).
///
/// N is the document's `failTimes` field when it has one, else the configured default.
public struct Flaky: ServiceHandler {
    /// Failures per request id unless the document says otherwise.
    public let failTimes: Int
    /// Calls so far per request id, shared by every copy of the handler (a route's retries reach
    /// the same instance's copy).
    private let calls = Calls()

    /// Bounded memory of calls per request id.
    private final class Calls: Sendable {
        let counts = Mutex<[String: Int]>([:])

        func next(_ id: String) -> Int {
            self.counts.withLock { counts in
                if counts.count >= 10_000 { counts.removeAll(keepingCapacity: true) }
                counts[id, default: 0] += 1
                return counts[id]!
            }
        }
    }

    /// Creates a `Flaky` from its parts.
    public init(failTimes: Int = 2) {
        self.failTimes = failTimes
    }

    /// Computes only; run directly, without a deadline race.
    public var completesPromptly: Bool { true }

    /// Fails the request's first `failTimes` calls (retryably, so a route's retries get through),
    /// then answers with `attempts`.
    public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
        let failTimes = request.payload["failTimes"]?.looseInt ?? self.failTimes
        let call = self.calls.next(request.id)
        if call <= failTimes {
            throw SkyError(.serviceError, "flaky: deliberate failure \(call) of \(failTimes)", retryable: true, service: "flaky")
        }
        var payload = request.payload
        payload["attempts"] = .int(Int64(call))
        return ServiceResponse(payload: payload)
    }
}
