import W3CTraceContext

/// W3C Trace Context (`traceparent`, `tracestate`): how a request joins a caller's trace and how
/// each call to a service carries it on, beside the envelope's own `trace` fields.
///
/// Our ids already have the W3C shapes (32 and 16 hex digits), so a Skynet trace is a W3C trace
/// with no translation. The parsing is swift-w3c-trace-context's.
extension TraceContext {
    /// The header names, lower case as HTTP/2 and the recommendation spell them.
    public enum W3CHeader {
        /// `00-TRACEID-PARENTID-FLAGS`.
        public static let traceparent = "traceparent"
        /// Vendors' entries, carried untouched.
        public static let tracestate = "tracestate"
    }

    /// This hop as a `traceparent` value: this span as the parent of whatever it calls, and the
    /// sampling decision as the `sampled` flag. `nil` when the trace id is not a W3C one (a
    /// caller's own `Skynet-Trace-Id` of another shape): such a trace cannot be named in W3C terms.
    public var traceparent: String? {
        Self.traceparent(traceID: self.traceID, spanID: self.spanID, sampled: self.sampled)
    }

    /// The `traceparent` of a hop whose ids the caller has spelled already (a minted id is
    /// spelled anew on every read: a caller that also sends the trace id spells it once);
    /// `nil` when they are not W3C ones.
    public static func traceparent(traceID: String, spanID: String, sampled: Bool) -> String? {
        guard Self.isLowerHex(traceID, count: 32), Self.isLowerHex(spanID, count: 16) else { return nil }
        return "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")"
    }

    /// The request's context when a caller sent `traceparent` (and maybe `tracestate`): the
    /// caller's trace id, the caller's span as parent, a fresh span id for this hop, and the
    /// caller's sampling decision (parent-based, as OpenTelemetry's default sampler does), or
    /// sampled anyway when `forced`.
    ///
    /// `nil` when `traceparent` does not parse: the recommendation says to start a new trace
    /// then. A `tracestate` that does not parse is dropped, and the `traceparent` kept.
    public static func joining(traceparent: String, tracestate: String?, forced: Bool = false) -> TraceContext? {
        let parent: W3CTraceContext.TraceContext
        if let parsed = try? W3CTraceContext.TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: tracestate) {
            parent = parsed
        } else if let parsed = try? W3CTraceContext.TraceContext(traceParentHeaderValue: traceparent) {
            parent = parsed
        } else {
            return nil
        }
        return TraceContext(
            traceID: parent.traceID.description, spanID: Identifiers.spanID(), parentID: parent.spanID.description,
            sampled: forced || parent.flags.contains(.sampled), state: parent.traceStateHeaderValue
        )
    }

    private static func isLowerHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
