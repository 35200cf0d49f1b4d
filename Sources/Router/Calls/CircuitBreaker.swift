import Foundation
import NIOCore
import Synchronization
import SkyLib
import RouteModel

/// One service's circuit breaker in this router: after ``BreakerPolicy/failures`` failed
/// calls in a row the circuit opens and calls fail fast (`circuit_open`) for the cool-down;
/// then one call goes through as a probe: its success closes the circuit, its failure opens
/// it again for another cool-down. Failures that are the caller's (`bad_request`) or that
/// reached no instance (`no_instance`) do not count.
final class CircuitBreaker: Sendable {
    /// Where the circuit is.
    enum State: Int, Sendable, Equatable {
        case closed = 0
        case halfOpen = 1
        case open = 2

        var name: String { ["closed", "half-open", "open"][self.rawValue] }
    }

    /// The breaker's state, the failures in a row that lead to opening it, until when it stays
    /// open, and whether the one probe a half-open breaker lets through is out.
    private struct Inner {
        var state = State.closed
        var failuresInARow = 0
        var openUntil: NIODeadline = .distantPast
        var probing = false
    }

    /// The service the breaker guards (one per service per router, shared by every route calling
    /// it).
    let service: String
    /// Changed by every call's outcome, from any task, hence locked.
    private let inner = Mutex(Inner())
    /// Calls refused while open, and times the circuit opened (for `/debug/vars`).
    let rejected: CounterCell
    let opened: CounterCell

    /// A closed breaker for `service`, its counters looked up once.
    init(service: String, counters: Counters) {
        self.service = service
        self.rejected = counters.cell("breaker.\(service)-rejected")
        self.opened = counters.cell("breaker.\(service)-opened")
    }

    /// The state now (for `/debug/vars`, `/metrics` and the node's stats).
    var state: State { self.inner.withLock { $0.state } }

    /// Whether a call may go now; `nil` when it may, else the error to fail it with.
    func permit(now: NIODeadline = .now(), policy: BreakerPolicy) -> SkyError? {
        let refusal = self.inner.withLock { inner -> TimeAmount? in
            switch inner.state {
            case .closed:
                return nil
            case .open where now >= inner.openUntil:
                // The cool-down is over: this call is the probe.
                inner.state = .halfOpen
                inner.probing = true
                return nil
            case .open:
                return inner.openUntil - now
            case .halfOpen:
                guard !inner.probing else { return .zero }
                inner.probing = true
                return nil
            }
        }
        guard let refusal else { return nil }
        self.rejected.add()
        let wait = refusal > .zero ? String(format: "; it closes for a probe in %.1fs", Double(refusal.nanoseconds) / 1e9) : "; a probe call is deciding"
        return SkyError(
            .circuitOpen, "circuit open for service '\(self.service)': \(policy.failures) calls failed in a row\(wait)", service: self.service
        )
    }

    /// Records a call's outcome.
    func record(_ error: SkyError?, now: NIODeadline = .now(), policy: BreakerPolicy) {
        let counts = error.map { ![SkyError.Code.badRequest, .noInstance, .circuitOpen].contains($0.code) } ?? false
        let opened = self.inner.withLock { inner -> Bool in
            let wasProbe = inner.probing
            inner.probing = false
            guard counts else {
                if error == nil {
                    inner.state = .closed
                    inner.failuresInARow = 0
                }
                return false
            }
            inner.failuresInARow += 1
            guard wasProbe || inner.failuresInARow >= policy.failures else { return false }
            inner.state = .open
            inner.openUntil = now + TimeAmount(policy.coolDown)
            return true
        }
        if opened { self.opened.add() }
    }
}

/// The breakers of one router, by service.
final class CircuitBreakers: Sendable {
    /// Where each new breaker's counters live.
    private let counters: Counters
    /// One breaker per service, made on first use.
    private let byService = Mutex<[String: CircuitBreaker]>([:])

    /// No breakers yet: one is made the first time a step with `breaker:` calls its service.
    init(counters: Counters) {
        self.counters = counters
    }

    /// The service's breaker, made on first use.
    func breaker(for service: String) -> CircuitBreaker {
        self.byService.withLock { breakers in
            if let breaker = breakers[service] { return breaker }
            let made = CircuitBreaker(service: service, counters: self.counters)
            breakers[service] = made
            return made
        }
    }

    /// Each breaker's state by service: 0 closed, 1 half-open, 2 open.
    var states: [String: Int64] {
        self.byService.withLock { breakers in breakers.mapValues { Int64($0.state.rawValue) } }
    }
}
