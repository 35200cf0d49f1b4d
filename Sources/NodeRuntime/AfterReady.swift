public import ServiceLifecycle

/// Runs `prepare` before `service`, for parts that must not start before others are ready
/// (the HTTP initiator waits until local services are registered and the cache has them).
public struct AfterReady: Service {
    public let prepare: @Sendable () async throws -> Void
    public let service: any Service

    public init(prepare: @escaping @Sendable () async throws -> Void, service: any Service) {
        self.prepare = prepare
        self.service = service
    }

    public func run() async throws {
        try await self.prepare()
        try await self.service.run()
    }
}
