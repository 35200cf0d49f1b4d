import Synchronization

/// At most `capacity` items handed from the request path to a background loop, refused (not
/// waited for, not grown) when full: spans on their way to the registry or a collector, where
/// dropping and counting one is better than slowing a request or growing memory.
public final class BoundedBuffer<Element: Sendable>: Sendable {
    /// Most items held.
    public let capacity: Int
    private let items = Mutex<[Element]>([])

    /// Creates an empty buffer of `capacity` items.
    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Keeps `element`; `false` when the buffer is full and it was refused.
    public func append(_ element: Element) -> Bool {
        self.items.withLock { items in
            guard items.count < self.capacity else { return false }
            items.append(element)
            return true
        }
    }

    /// Takes the oldest `limit` items (all of them by default), leaving the rest.
    public func take(upTo limit: Int = .max) -> [Element] {
        self.items.withLock { items in
            guard limit < items.count else {
                defer { items.removeAll(keepingCapacity: true) }
                return items
            }
            let taken = Array(items.prefix(limit))
            items.removeFirst(limit)
            return taken
        }
    }

    /// Items held now.
    public var count: Int { self.items.withLock { $0.count } }
}
