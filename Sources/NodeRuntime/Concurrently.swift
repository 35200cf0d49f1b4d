public import ServiceLifecycle

/// Runs services side by side as one: graceful shutdown reaches all of them at once, so the
/// services `sky run` hosts drain together instead of one after another.
public struct Concurrently: Service {
    /// Run side by side; the first to fail fails them all.
    public let services: [any Service]

    /// Creates a `Concurrently` from its parts.
    public init(services: [any Service]) {
        self.services = services
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for service in self.services {
                group.addTask { try await service.run() }
            }
        }
    }
}
