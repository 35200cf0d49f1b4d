import Synchronization

/// Where a router keeps what it worked out once about a route (its plan: which steps run in
/// this process, and by which handler) so that a request does not work it out again.
///
/// Each ``Route`` value carries a slot, shared by its copies; a route table gives every route it
/// installs a new one, so a reloaded route never finds its old revision's plan. A plan is kept
/// under a key its maker chooses (the router, and the generation of its registry cache) and
/// made again when the key changes. A slot plays no part in comparing or hashing routes.
public final class RoutePlanSlot: Sendable, Hashable {
    /// Who made the plan, and from what.
    public struct Key: Sendable, Equatable {
        /// The object that made the plan (a router: another one's plan names its handlers).
        public var owner: ObjectIdentifier
        /// What the plan was made from (the registry cache's generation).
        public var generation: Int

        /// Creates a `Key` from its parts.
        public init(owner: ObjectIdentifier, generation: Int) {
            self.owner = owner
            self.generation = generation
        }
    }

    private let kept = Mutex<(key: Key, plan: (any AnyObject & Sendable)?)?>(nil)

    /// Creates an empty `RoutePlanSlot`.
    public init() {}

    /// The plan kept under `key`, or the one `make` makes now (kept for the next request). A
    /// route without a plan (`make` answers `nil`) is remembered as such too.
    public func plan<Plan: AnyObject & Sendable>(for key: Key, make: () -> Plan?) -> Plan? {
        if let kept = self.kept.withLock({ $0 }), kept.key == key { return kept.plan as? Plan }
        let made = make()
        self.kept.withLock { $0 = (key, made) }
        return made
    }

    /// Every slot is alike to comparison: what it holds is a cache, not part of the route.
    public static func == (lhs: RoutePlanSlot, rhs: RoutePlanSlot) -> Bool { true }

    /// Hashes nothing, as equality compares nothing.
    public func hash(into hasher: inout Hasher) {}
}
