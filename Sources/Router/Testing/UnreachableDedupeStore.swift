public import Foundation
public import NIOCore
public import RegistryKit
public import SkyLib

/// A route test's registry fault (`faults: { registry: [ {down: 5s} ] }`): the dedupe store
/// fails every call as an unreachable registry does, until the test's clock reaches `until`.
///
/// Only routes with `dedupe:` ask the registry while they run; a router's calls go to the
/// instances its cache holds, so an outage changes nothing for other routes, as in a router.
public struct UnreachableDedupeStore: DedupeStore {
    /// The store answering once the registry is back.
    let store: any DedupeStore
    /// The test's clock.
    let clock: RouteClock
    /// When the registry is back.
    let until: NIODeadline

    /// Creates a store that fails until `clock` reaches `until`, then answers from `store`.
    public init(store: any DedupeStore, clock: RouteClock, until: NIODeadline) {
        self.store = store
        self.clock = clock
        self.until = until
    }

    private func check() throws {
        if self.clock.now() < self.until { throw SkyError(.registry, "the registry is unreachable (scripted fault)", retryable: true) }
    }

    public func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        try self.check()
        return try await self.store.claimDedupe(route: route, key: key, owner: owner, now: now, expiresAt: expiresAt, runningUntil: runningUntil)
    }

    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try self.check()
        return try await self.store.renewDedupe(route: route, key: key, owner: owner, runningUntil: runningUntil)
    }

    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        try self.check()
        try await self.store.completeDedupe(route: route, key: key, owner: owner, answer: answer)
    }

    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        try self.check()
        try await self.store.releaseDedupe(route: route, key: key, owner: owner)
    }
}
