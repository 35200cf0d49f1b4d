import Foundation
import NIOCore
import Synchronization
import SkyLib
import RouteModel

/// A rate limit kept by this router (GCRA, the token bucket as a single time): each admission
/// books the next slot, `interval` after the last; up to `burst` slots may be booked ahead.
/// A request that would wait longer than it may is refused before it waits at all.
final class RateLimiter: Sendable {
    /// The rate it keeps; a reloaded route with another rate gets a new limiter.
    let rate: RateLimit
    /// The time the next request would be admitted at the steady rate (GCRA's "TAT").
    private let theoretical = Mutex(NIODeadline.distantPast)

    /// A limiter with no slot booked: the first request goes at once.
    init(rate: RateLimit) {
        self.rate = rate
    }

    /// Books a slot: answers when the request may go (`now` or later), or `nil` when that is
    /// more than `maxWait` away (nothing is booked then).
    func reserve(now: NIODeadline = .now(), maxWait: TimeAmount?) -> NIODeadline? {
        let interval = TimeAmount(self.rate.interval)
        let tolerance = interval * Int64(self.rate.burst - 1)
        return self.theoretical.withLock { tat -> NIODeadline? in
            let next = max(tat, now)
            let allowedAt = max(now, next - tolerance)
            if let maxWait, allowedAt - now > maxWait { return nil }
            tat = next + interval
            return allowedAt
        }
    }
}

/// This router's rate limiters, by route (and by route and step).
final class RateLimiters: Sendable {
    /// Counts requests delayed and refused per limit.
    private let counters: Counters
    /// One limiter per route or step, made on first use.
    private let byKey = Mutex<[String: RateLimiter]>([:])

    /// No limiters yet: one is made the first time a limited route or step runs.
    init(counters: Counters) {
        self.counters = counters
    }

    /// The limiter of `key`, made on first use and made again when the route's rate changed.
    func limiter(_ key: String, rate: RateLimit) -> RateLimiter {
        self.byKey.withLock { limiters in
            // A reloaded route with another rate gets a fresh limiter.
            if let limiter = limiters[key], limiter.rate == rate { return limiter }
            let made = RateLimiter(rate: rate)
            limiters[key] = made
            return made
        }
    }

    /// Waits for a slot of `rate` under `key` (`what` names it in messages; the counters are
    /// `rate.KEY-delayed` and `rate.KEY-rejected`: `route.NAME`, or `step.ROUTE.N` with N the
    /// call's number in the file, nested calls counted). Requests from HTTP wait at most until
    /// `deadline`, and are refused (429) when the slot is later; bulk initiators' requests
    /// (files, CSV rows, STOMP messages) wait as long as it takes: slowed, never dropped.
    func admit(_ key: String, what: String, rate: RateLimit, request: RequestEnvelope, deadline: NIODeadline?) async throws(SkyError) {
        let bulk = request.isFromBulkInitiator
        let now = NIODeadline.now()
        let maxWait = bulk ? nil : deadline.map { max(.zero, $0 - now) }
        guard let at = self.limiter(key, rate: rate).reserve(now: now, maxWait: maxWait) else {
            self.counters.add("rate.\(key)-rejected")
            throw SkyError(.rateLimited, "\(what) is over its rate of \(rate); this request could not wait for a slot within its deadline")
        }
        guard at > now else { return }
        self.counters.add("rate.\(key)-delayed")
        do {
            try await Task.sleep(for: .nanoseconds((at - now).nanoseconds))
        } catch {
            throw SkyError(.rateLimited, "\(what): cancelled while waiting for a slot of its rate")
        }
    }
}

extension RateLimiters {
    /// Waits for `route`'s rate (when it has one) to admit `request`: before the route's clock
    /// starts, since waiting for a slot is not running the route. An HTTP request waits at most
    /// until the route's timeout or its own deadline, whichever is sooner.
    func admit(_ route: Route, request: RequestEnvelope, defaultTimeout: Duration) async throws(SkyError) {
        guard let rate = route.rate else { return }
        let deadline = NIODeadline.now() + TimeAmount(route.timeout ?? defaultTimeout)
        let caller = request.remainingMilliseconds.map { NIODeadline.now() + .milliseconds($0) }
        try await self.admit("route.\(route.name)", what: "route '\(route.name)'", rate: rate, request: request, deadline: min(deadline, caller ?? deadline))
    }
}
