public import ServiceLifecycle

/// Runs `prepare` before `service`, for parts that must not start before others are ready
/// (the HTTP initiator waits until local services are registered and the cache has them).
public struct AfterReady: Service {
    /// Awaited first; when it throws, `service` never starts.
    public let prepare: @Sendable () async throws -> Void
    /// Run once `prepare` has returned.
    public let service: any Service

    /// Creates an `AfterReady` from its parts.
    public init(prepare: @escaping @Sendable () async throws -> Void, service: any Service) {
        self.prepare = prepare
        self.service = service
    }

    public func run() async throws {
        try await self.prepare()
        try await self.service.run()
    }
}
