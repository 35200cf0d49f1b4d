public import Logging
public import ServiceLifecycle
public import SkyLib

/// Collects the spans a process records and writes them to the registry in batches, off the
/// request path.
///
/// With an exporter (`--otlp`), every span goes to it as well.
///
/// `record(_:)` only appends to a bounded buffer under a lock; it never waits. When the
/// buffer is full the span is dropped and counted (`spans-dropped` at `/debug/vars`), so a
/// slow or unreachable registry can never slow requests or grow memory. ``run()`` flushes
/// every `interval` and once more on graceful shutdown.
public final class SpanRecorder: Service, Sendable {
    /// Who records: written into every span.
    public let recorder: String
    /// The machine's name, written into every span.
    public let host: String
    /// Most spans held between flushes.
    public let capacity: Int
    /// Time between flushes.
    public let interval: Duration
    private let registry: any SpanStore
    private let exporter: (any SpanExporter)?
    private let buffer: BoundedBuffer<Span>
    private let dropped: CounterCell
    private let flushed: CounterCell
    private let failedFlushes: CounterCell
    private let logger: Logger

    /// Creates a `SpanRecorder` from its parts.
    public init(
        registry: any SpanStore,
        recorder: String,
        host: String,
        counters: Counters,
        capacity: Int = 4096,
        interval: Duration = .milliseconds(250),
        exporter: (any SpanExporter)? = nil,
        logger: Logger
    ) {
        self.registry = registry
        self.exporter = exporter
        self.recorder = recorder
        self.host = host
        self.capacity = capacity
        self.buffer = BoundedBuffer(capacity: capacity)
        self.interval = interval
        self.dropped = counters.cell("spans-dropped")
        self.flushed = counters.cell("spans-recorded")
        self.failedFlushes = counters.cell("spans-flush-errors")
        self.logger = logger
    }

    /// Spans waiting to be written.
    public var pending: Int { self.buffer.count }

    /// Keeps `span` for the next flush, or drops and counts it when the buffer is full; hands
    /// it to the exporter too (an OpenTelemetry collector), which buffers it on its own terms.
    public func record(_ span: Span) {
        self.exporter?.export(span)
        if !self.buffer.append(span) { self.dropped.add() }
    }

    /// Writes what is buffered now.
    public func flush() async {
        let batch = self.buffer.take()
        guard !batch.isEmpty else { return }
        do {
            try await self.registry.recordSpans(batch)
            self.flushed.add(Int64(batch.count))
        } catch {
            // The spans are lost, counted; tracing must never hold work back.
            self.failedFlushes.add()
            self.dropped.add(Int64(batch.count))
            self.logger.debug("writing spans failed", metadata: ["spans": "\(batch.count)", "error": "\(error)"])
        }
    }

    public func run() async throws {
        // Cancellation ends it too: a cancelled sleep returns at once, and a loop that only
        // watched for graceful shutdown spun a core after a failed start (issue 16).
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: self.interval)
            await self.flush()
        }
        await self.flush()
    }
}
