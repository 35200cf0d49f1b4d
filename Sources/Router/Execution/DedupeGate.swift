import Foundation
import Logging
import RegistryKit
import SkyLib
import RouteModel

/// The idempotent consumer of a `dedupe:` route: who runs a key, who waits for its answer, and
/// how the claim is kept and the answer recorded so that a key is charged at most once.
struct DedupeGate: Sendable {
    /// Where the keys live (the registry's dedupe role, shared by every router).
    let store: any DedupeStore
    /// How long a claim lasts unless renewed (renewed every third of that while it is held).
    let claimLife: Duration
    /// How long recording an answer is retried before giving up loudly.
    let recordLimit: Duration
    /// Counts duplicates, conflicts, claims lost, answers recorded late or never.
    let counters: Counters
    let logger: Logger

    /// An idempotent consumer's request: the first with its key runs and its answer is kept;
    /// a later one within the window gets that answer; one that arrives while the first runs
    /// waits for it — an HTTP request until its deadline (then 409 `conflict`), a bulk one
    /// until the first is answered or its claim lapses (its router died), then it runs.
    /// A failed run keeps nothing, so a retry runs again. When the registry cannot be
    /// reached the request fails (503) rather than risk running twice.
    ///
    /// At most once: the request is admitted by the route's rate first (a bulk request may
    /// wait there without bound, which must not eat its claim's life), the claim is renewed
    /// while the steps run and while the answer is recorded, and recording is retried until
    /// it holds (or, after ``recordLimit``, an error is logged and counted).
    /// - Parameters:
    ///   - timeout: the route's own timeout (how long an HTTP duplicate may wait for the first).
    ///   - admit: the route's rate admission, awaited before the key is claimed.
    ///   - body: runs the admitted request (steps, counters, spans).
    func run(
        _ route: Route, policy: DedupePolicy, key: String, request: RequestEnvelope, timeout: Duration,
        admit: () async throws(SkyError) -> Void, body: @escaping @Sendable () async throws(SkyError) -> RouteResult
    ) async throws(SkyError) -> RouteResult {
        try await admit()
        let owner = Identifiers.requestID()
        let store = self.store
        let bulk = request.isFromBulkInitiator
        let waitUntil = ContinuousClock.now + (request.remainingMilliseconds.map { min(timeout, .milliseconds($0)) } ?? timeout)
        var pause = Duration.milliseconds(20)
        while true {
            let now = Date()
            let claim: DedupeClaim
            do {
                claim = try await store.claimDedupe(
                    route: route.name, key: key, owner: owner, now: now, expiresAt: now.addingTimeInterval(policy.window.seconds),
                    runningUntil: now.addingTimeInterval(self.claimLife.seconds)
                )
            } catch {
                throw SkyError(.registry, "route '\(route.name)' deduplicates on \(policy.key), and the registry could not be asked: \(error)", retryable: true, route: route.name)
            }
            switch claim {
            case .claimed:
                let result: RouteResult
                do {
                    result = try await self.holdingClaim(route: route.name, key: key, owner: owner, store: store, body)
                } catch {
                    try? await store.releaseDedupe(route: route.name, key: key, owner: owner)
                    throw error
                }
                _ = try? await self.holdingClaim(route: route.name, key: key, owner: owner, store: store) { () async throws(SkyError) -> Bool in
                    await self.recordDedupe(result, route: route.name, key: key, owner: owner, store: store)
                    return true
                }
                return result
            case .done(let answer):
                self.counters.add("dedupe.\(route.name)-duplicates")
                var result = RouteResult(json: answer)
                result.meta["deduplicated"] = "true"
                return result
            case .running:
                guard bulk || ContinuousClock.now + pause < waitUntil else {
                    self.counters.add("dedupe.\(route.name)-conflicts")
                    throw SkyError(.conflict, "a request with \(policy.key) = \(key) is still running on route '\(route.name)'; ask again once it is answered", route: route.name)
                }
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    throw SkyError(.conflict, "cancelled while a request with \(policy.key) = \(key) was running", route: route.name)
                }
                pause = min(pause * 2, .milliseconds(500))
            }
        }
    }

    /// Runs `body` while renewing the dedupe claim `owner` holds on `key`, every third of the
    /// claim's life. A renewal the registry refuses (the claim was lost: the registry was away
    /// longer than its life and another router took the key) is logged and counted
    /// (`dedupe.ROUTE-claims-lost`); one that cannot reach the registry is tried again at the
    /// next turn.
    func holdingClaim<T: Sendable>(
        route: String, key: String, owner: String, store: any DedupeStore, _ body: @escaping @Sendable () async throws(SkyError) -> T
    ) async throws(SkyError) -> T {
        let life = self.claimLife
        let outcome = await withTaskGroup(of: Result<T, SkyError>?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: life / 3)
                    } catch {
                        return nil
                    }
                    guard let held = try? await store.renewDedupe(route: route, key: key, owner: owner, runningUntil: Date().addingTimeInterval(life.seconds)) else { continue }
                    if !held {
                        self.counters.add("dedupe.\(route)-claims-lost")
                        self.logger.warning("dedupe claim lost while its request ran; a duplicate may run beside it", metadata: ["route": "\(route)", "key": "\(key)"])
                        return nil
                    }
                }
                return nil
            }
            group.addTask {
                do throws(SkyError) {
                    return .success(try await body())
                } catch {
                    return .failure(error)
                }
            }
            while let finished = await group.next() {
                guard let finished else { continue }
                group.cancelAll()
                return finished
            }
            return Result<T, SkyError>.failure(SkyError(.internal, "dedupe: the request ended without an outcome"))
        }
        return try outcome.get()
    }

    /// Records the answer of a dedupe claim, trying again (100 ms doubling to 2 s) until the
    /// registry has it; after ``recordLimit`` it gives up loudly: an error logged and
    /// `dedupe.ROUTE-unrecorded` counted (a duplicate arriving once the claim lapses would run).
    func recordDedupe(_ result: RouteResult, route: String, key: String, owner: String, store: any DedupeStore) async {
        let giveUp = ContinuousClock.now + self.recordLimit
        var pause = Duration.milliseconds(100)
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await store.completeDedupe(route: route, key: key, owner: owner, answer: result.json)
                if attempts > 1 { self.logger.notice("dedupe answer recorded after \(attempts) attempts", metadata: ["route": "\(route)", "key": "\(key)"]) }
                return
            } catch {
                if attempts == 1 { self.counters.add("dedupe.\(route)-record-retries") }
                guard ContinuousClock.now + pause < giveUp, !Task.isCancelled else {
                    self.counters.add("dedupe.\(route)-unrecorded")
                    self.logger.error(
                        "dedupe answer not recorded after \(attempts) attempts; a duplicate arriving once the claim lapses will run again",
                        metadata: ["route": "\(route)", "key": "\(key)", "error": "\(error)"]
                    )
                    return
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }
}
