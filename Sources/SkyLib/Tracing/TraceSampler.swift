import Foundation
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
    /// The token bucket as GCRA (the generic cell rate algorithm): the theoretical time of the
    /// next trace, in monotonic nanoseconds. A draw is taken while that time is at most a
    /// bucket's worth of intervals ahead of now. Lock-free, and a refused draw only reads:
    /// every request asks, and under load nearly all are refused (a mutex here showed in the
    /// CSV profile).
    private let nextTrace: Atomic<Int64>
    /// Nanoseconds between traces at the full rate.
    private let interval: Int64
    /// How far ahead of now the next trace's time may run: a full bucket (`perSecond` traces
    /// at once) after a quiet second.
    private let tolerance: Int64

    /// Creates a `TraceSampler` from its parts.
    public init(perSecond: Double) {
        self.perSecond = perSecond
        // At most about 30 years between traces: a tiny rate must not overflow the clock.
        self.interval = perSecond > 0 ? Int64(min(1e18, (1e9 / perSecond).rounded(.up))) : .max
        self.tolerance = perSecond >= 1 ? Int64((perSecond - 1) * Double(self.interval)) : 0
        self.nextTrace = Atomic(Self.monotonicNanoseconds())
    }

    /// Whether the next trace is recorded.
    public func sample() -> Bool {
        guard self.perSecond > 0 else { return false }
        let now = Self.monotonicNanoseconds()
        var next = self.nextTrace.load(ordering: .relaxed)
        while next - self.tolerance <= now {
            let (exchanged, original) = self.nextTrace.compareExchange(
                expected: next, desired: max(next, now) + self.interval, ordering: .relaxed
            )
            if exchanged { return true }
            next = original
        }
        return false
    }

    private static func monotonicNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// A new root trace, sampled by this sampler (or forced).
    public func root(forced: Bool = false) -> TraceContext {
        .root(sampled: forced || self.sample())
    }
}
