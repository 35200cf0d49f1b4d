public import Foundation
import Synchronization

/// Decides at the initiator whether a new request's trace is recorded.
///
/// Every request is traced while traffic is light, so `sky trace` finds the request you just
/// made; under load at most `perSecond` new traces a second are, so tracing costs a bounded
/// amount whatever the load (a token bucket). A caller can force one with the
/// `Skynet-Trace: 1` header. `SKYNET_TRACE_PER_SECOND` sets the rate (0 turns sampling off).
public final class TraceSampler: Sendable {
    /// A sampler at the rate `SKYNET_TRACE_PER_SECOND` asks for (default 100 a second). The
    /// node runtime makes one per process and hands it to the router that initiators share.
    public static func fromEnvironment(_ environment: [String: String]) -> TraceSampler {
        TraceSampler(perSecond: Double(environment["SKYNET_TRACE_PER_SECOND"] ?? "") ?? 100)
    }

    /// New traces recorded a second at most (0: none, unless forced).
    public let perSecond: Double
    private let state: Mutex<(tokens: Double, refilledAt: ContinuousClock.Instant)>

    /// Creates a `TraceSampler` from its parts.
    public init(perSecond: Double) {
        self.perSecond = perSecond
        self.state = Mutex((perSecond, .now))
    }

    /// Whether the next trace is recorded.
    public func sample() -> Bool {
        guard self.perSecond > 0 else { return false }
        return self.state.withLock { state in
            let now = ContinuousClock.now
            state.tokens = min(self.perSecond, state.tokens + (now - state.refilledAt).seconds * self.perSecond)
            state.refilledAt = now
            guard state.tokens >= 1 else { return false }
            state.tokens -= 1
            return true
        }
    }

    /// A new root trace, sampled by this sampler (or forced).
    public func root(forced: Bool = false) -> TraceContext {
        .root(sampled: forced || self.sample())
    }
}
