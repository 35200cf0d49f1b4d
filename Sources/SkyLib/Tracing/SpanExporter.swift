/// Somewhere spans go besides the registry: an OpenTelemetry collector, for instance.
///
/// The span recorder hands every span it records to its exporter on the request path, so
/// `export(_:)` must only buffer (bounded) and return; the sending happens elsewhere.
public protocol SpanExporter: Sendable {
    /// Keeps `span` for the next batch, or drops and counts it when the buffer is full.
    func export(_ span: Span)
}
