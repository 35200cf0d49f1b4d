import AsyncHTTPClient
import Foundation
public import Logging
public import NIOCore
import NIOHTTP1
public import ServiceLifecycle
public import SkyLib
import Synchronization

/// Sends the spans a process records to an OpenTelemetry collector over OTLP/HTTP
/// (`POST /v1/traces`, `application/x-protobuf`), batched, off the request path.
///
/// `export(_:)` only appends to a bounded buffer; ``run()`` sends a batch every second (or as
/// soon as 512 wait) and once more on graceful shutdown. A collector that asks the sender to
/// slow down (429, 502, 503 or 504, the answers OTLP/HTTP calls retryable) gets the same batch
/// again after its `Retry-After` (at most 10 s) or a doubling pause, up to 3 times, while new
/// spans wait in the bounded buffer (past its capacity they are dropped and counted). A batch
/// the collector does not take otherwise (down, refusing, slow past the timeout, any other
/// answer) is dropped and counted at once, never retried into a growing backlog:
/// `otlp-spans-exported`, `otlp-spans-dropped`, `otlp-export-errors` and
/// `otlp-export-retries` at `/debug/vars`. A request never waits on the collector.
public final class OTLPExporter: SpanExporter, Service, Sendable {
    /// Where the batches go (the full URL, `…/v1/traces`).
    public let endpoint: OTLPEndpoint
    /// `service.name` of the process's spans (a service span carries its own service's name).
    public let serviceName: String
    /// Most spans held between batches; more are dropped and counted.
    public let capacity: Int
    /// Most spans in one request to the collector.
    public let batchSize: Int
    /// Longest wait between batches.
    public let interval: Duration
    private let buffer: BoundedBuffer<Span>
    private let exported: CounterCell
    private let dropped: CounterCell
    private let failures: CounterCell
    private let retries: CounterCell
    /// Further attempts at a batch the collector answered with a retryable status.
    static let maxRetries = 3
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger
    /// Where the exporter's client runs (the node's loops).
    private let eventLoopGroup: any EventLoopGroup

    /// Creates an `OTLPExporter` from its parts.
    /// - Parameter eventLoopGroup: where the collector connection runs (the node's loops).
    public init(
        endpoint: OTLPEndpoint,
        serviceName: String,
        counters: Counters,
        capacity: Int = 2048,
        batchSize: Int = 512,
        interval: Duration = .seconds(1),
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.endpoint = endpoint
        self.eventLoopGroup = eventLoopGroup
        self.serviceName = serviceName
        self.capacity = capacity
        self.buffer = BoundedBuffer(capacity: capacity)
        self.batchSize = batchSize
        self.interval = interval
        self.exported = counters.cell("otlp-spans-exported")
        self.dropped = counters.cell("otlp-spans-dropped")
        self.failures = counters.cell("otlp-export-errors")
        self.retries = counters.cell("otlp-export-retries")
        self.logger = logger
    }

    /// Spans waiting for the next batch.
    public var pending: Int { self.buffer.count }

    public func export(_ span: Span) {
        if !self.buffer.append(span) { self.dropped.add() }
    }

    /// The client batches go through: made by ``run()`` and shut down when it ends (so an
    /// exporter that never runs holds no connection pool). A refused connection fails the
    /// batch at once instead of being retried until the timeout, so a dead collector costs
    /// one quick failure a batch.
    static func makeClient(eventLoopGroup: any EventLoopGroup) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(10))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 2)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    /// Sends what is buffered now, in batches of at most ``batchSize``.
    func flush(using client: HTTPClient) async {
        while true {
            let batch = self.buffer.take(upTo: self.batchSize)
            guard !batch.isEmpty else { return }
            await self.send(batch, using: client)
        }
    }

    private func send(_ batch: [Span], using client: HTTPClient) async {
        let body = OTLPTraceRequest(spans: batch, serviceName: self.serviceName).bytes
        let problem = await Self.post(body, to: self.endpoint, using: client, logger: self.logger) { self.retries.add() }
        guard let problem else {
            self.exported.add(Int64(batch.count))
            return
        }
        self.failures.add()
        self.dropped.add(Int64(batch.count))
        // A collector that is down would otherwise log a line a second.
        let warn = self.lastWarning.withLock { last in
            let now = ContinuousClock.now
            guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
            last = now
            return true
        }
        let message: Logger.Message = "OTLP export to \(self.endpoint.url) failed (\(problem)); \(batch.count) spans dropped"
        if warn { self.logger.warning(message) } else { self.logger.debug(message) }
    }

    /// Posts one OTLP/HTTP body (spans or metrics), sending it again while the collector
    /// answers a retryable status (``retryPause(status:retryAfter:retry:)``), at most
    /// ``maxRetries`` more times and not once shutdown began.
    /// - Returns: `nil` when the collector took it; else what went wrong, for the log.
    static func post(
        _ body: [UInt8], to endpoint: OTLPEndpoint, using client: HTTPClient, logger: Logger, retried: () -> Void
    ) async -> String? {
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        var retry = 0
        while true {
            do {
                let response = try await client.execute(request, timeout: .seconds(10), logger: logger)
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) { return nil }
                let problem = "the collector answered HTTP \(response.status.code)"
                guard let pause = Self.retryPause(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"), retry: retry),
                    retry < Self.maxRetries, !Task.isShuttingDownGracefully
                else { return problem }
                retry += 1
                retried()
                logger.debug("OTLP collector asked to retry", metadata: ["status": "\(response.status.code)", "pause": "\(pause)"])
                do { try await Task.sleep(for: pause) } catch { return problem }
            } catch {
                return "\(error)"
            }
        }
    }

    /// How long to wait before sending a batch again, or `nil` when `status` is not one that
    /// OTLP/HTTP says to retry (429, 502, 503, 504). `Retry-After` in seconds wins, capped at
    /// 10 s (an HTTP date is not honoured: collectors send seconds); else 1 s, doubling.
    static func retryPause(status: Int, retryAfter: String?, retry: Int) -> Duration? {
        guard [429, 502, 503, 504].contains(status) else { return nil }
        if let seconds = retryAfter.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), seconds >= 0 {
            return .seconds(min(seconds, 10))
        }
        return .seconds(1 << min(retry, 3))
    }

    public func run() async throws {
        let client = Self.makeClient(eventLoopGroup: self.eventLoopGroup)
        let tick = Duration.milliseconds(100)
        var waited = Duration.zero
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: tick)
            waited += tick
            if waited >= self.interval || self.pending >= self.batchSize {
                waited = .zero
                await self.flush(using: client)
            }
        }
        await self.flush(using: client)
        try? await client.shutdown()
    }
}
