public import Foundation
public import SkyLib

/// Where routes with `dedupe:` keep the requests they have seen, so a request whose key was
/// answered within the window gets the first answer again, across every router.
public protocol DedupeStore: Sendable {
    /// Claims `key` of `route` for `owner`: answers `.claimed` when this request is the first
    /// (or the earlier claim ran out: answered past `expiresAt`, or running past its
    /// `runningUntil`, as when its router died), `.done` with the stored answer, or `.running`
    /// when another request with the key is in flight.
    func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim

    /// Keeps a claim `owner` holds alive while its request runs: moves its `runningUntil`
    /// later, so a request slower than a claim's life (or one waiting long for its rate) is
    /// not taken for a dead router's and run a second time.
    /// - Returns: `false` when `owner` no longer holds a running claim on the key.
    func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool

    /// Stores the answer of a claim `owner` holds.
    func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws

    /// Gives up a claim `owner` holds (the request failed: a later one may run it again).
    func releaseDedupe(route: String, key: String, owner: String) async throws
}

/// What a dedupe claim found.
public enum DedupeClaim: Sendable, Equatable {
    /// This request is the first with its key: run it.
    case claimed
    /// A request with the key was answered within the window: this is its answer.
    case done(JSONValue)
    /// A request with the key is running (on this router or another).
    case running(owner: String)
}
