public import Foundation
public import SkyLib

/// Failed inputs of every initiator, in one place (``FailedItem``): recorded by the nodes,
/// listed, redriven and dropped by `sky failed` and the dashboard.
public protocol FailedStore: Sendable {
    /// Records failures. An item whose id is stored already (an input that failed again after a
    /// redrive) goes back to `failed` with one attempt more and the new error; the others are
    /// added. Items done or dropped more than ``FailedQuery/keptFor`` ago are pruned.
    func recordFailed(_ items: [FailedItem]) async throws

    /// The items `query` matches, the latest failure first, at most `limit`.
    func failedItems(_ query: FailedQuery, limit: Int) async throws -> [FailedItem]

    /// How many items there are in each of `states`, by route, source and folder or destination:
    /// what the dashboard shows once a second, without reading the items (or their inputs).
    func failedCounts(states: Set<FailedItem.State>) async throws -> [FailedCount]

    /// Moves item `id` to `to` with `actor` and `note`, only if its state is one of `from` (and,
    /// with `updatedBefore`, it last changed before then): of several movers exactly one wins.
    /// - Returns: the item as stored after the move; `nil` when it did not move.
    func moveFailed(id: String, from: Set<FailedItem.State>, updatedBefore: Date?, to: FailedItem.State, actor: String, note: String, now: Date) async throws -> FailedItem?
}

/// Which failed items to list. Every field left `nil` matches everything.
public struct FailedQuery: Sendable, Hashable {
    /// How long an item done or dropped is kept: a week.
    public static let keptFor: TimeInterval = 7 * 86400

    /// Only these ids.
    public var ids: [String]?
    /// Only this route.
    public var route: String?
    /// Only inputs of this source kind.
    public var source: FailedItem.Source?
    /// Only this folder or destination.
    public var resource: String?
    /// Only this error code.
    public var code: String?
    /// Only items that failed at or after this.
    public var since: Date?
    /// Only items in these states.
    public var states: Set<FailedItem.State>?
    /// Only items recorded by this node.
    public var node: String?
    /// Only items that changed after this.
    public var updatedSince: Date?

    /// Creates a `FailedQuery` from its parts.
    public init(
        ids: [String]? = nil, route: String? = nil, source: FailedItem.Source? = nil, resource: String? = nil, code: String? = nil, since: Date? = nil,
        states: Set<FailedItem.State>? = nil, node: String? = nil, updatedSince: Date? = nil
    ) {
        self.ids = ids
        self.route = route
        self.source = source
        self.resource = resource
        self.code = code
        self.since = since
        self.states = states
        self.node = node
        self.updatedSince = updatedSince
    }

    /// Whether `item` matches (the in-memory registry's filter, and a check on the others').
    public func matches(_ item: FailedItem) -> Bool {
        (self.ids.map { $0.contains(item.id) } ?? true) && (self.route.map { $0 == item.route } ?? true)
            && (self.source.map { $0 == item.source } ?? true) && (self.resource.map { $0 == item.resource } ?? true)
            && (self.code.map { $0 == item.code } ?? true) && (self.since.map { item.failedAt >= $0 } ?? true)
            && (self.states.map { $0.contains(item.state) } ?? true) && (self.node.map { $0 == item.node } ?? true)
            && (self.updatedSince.map { item.updatedAt > $0 } ?? true)
    }
}

/// How many failed items one route has in one state, from one source.
public struct FailedCount: Sendable, Hashable {
    /// The route.
    public var route: String
    /// The initiator kind.
    public var source: FailedItem.Source
    /// The folder or destination.
    public var resource: String
    /// The items' state.
    public var state: FailedItem.State
    /// How many.
    public var count: Int

    /// Creates a `FailedCount` from its parts.
    public init(route: String, source: FailedItem.Source, resource: String, state: FailedItem.State, count: Int) {
        self.route = route
        self.source = source
        self.resource = resource
        self.state = state
        self.count = count
    }

    /// Counts `items` the way a driver's query does (the in-memory registry's, and the check on
    /// the others').
    public static func counting(_ items: [FailedItem]) -> [FailedCount] {
        Self.summing(items.map { FailedCount(route: $0.route, source: $0.source, resource: $0.resource, state: $0.state, count: 1) })
    }

    /// Counts of the same route, source, resource and state added up, sorted by those.
    public static func summing(_ counts: [FailedCount]) -> [FailedCount] {
        var merged: [String: FailedCount] = [:]
        for count in counts {
            let key = "\(count.route)\u{0}\(count.source.rawValue)\u{0}\(count.resource)\u{0}\(count.state.rawValue)"
            if merged[key] == nil { merged[key] = count } else { merged[key]?.count += count.count }
        }
        return merged.values.sorted { ($0.route, $0.source.rawValue, $0.resource, $0.state.rawValue) < ($1.route, $1.source.rawValue, $1.resource, $1.state.rawValue) }
    }
}
