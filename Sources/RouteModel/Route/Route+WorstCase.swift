import SkyLib
extension Route {
    /// The longest a request can take by the route's own settings: each awaited call's
    /// attempts × its timeout plus the back-off between them (each delay at its most), a
    /// `choice`'s longest branch, a `parallel`'s longest branch (bounded by its timeout), all
    /// bounded by the route's timeout (`defaultTimeout` when it sets none). Out-of-band steps
    /// cost nothing here: they are not awaited.
    public func worstCase(defaultTimeout: Duration = .seconds(30)) -> Duration {
        let bound = self.timeout ?? defaultTimeout
        return min(bound, Self.worstCase(self.steps, bound: bound))
    }

    private static func worstCase(_ steps: [RouteStep], bound: Duration) -> Duration {
        steps.reduce(Duration.zero) { total, step in
            let own: Duration
            switch step.action {
            case .call:
                guard !step.isAsync else { return total }
                let attempt = step.timeout ?? bound
                let attempts = step.retry.attempts
                var backoff = Duration.zero
                for retry in 1..<max(attempts, 1) {
                    backoff += min(step.retry.backoff * (1 << min(retry - 1, 30)), step.retry.max)
                }
                own = attempt * attempts + backoff
            case .choice(let branches, let otherwise):
                own = (branches.map(\.steps) + [otherwise ?? []]).map { Self.worstCase($0, bound: bound) }.max() ?? .zero
            case .parallel(let parallel):
                let longest = parallel.branches.map { Self.worstCase($0.steps, bound: bound) }.max() ?? .zero
                own = step.timeout.map { min($0, longest) } ?? longest
            }
            return total + min(own, bound)
        }
    }
}
