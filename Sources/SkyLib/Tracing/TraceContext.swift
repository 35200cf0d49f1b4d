/// Where a request sits in a distributed trace: started by the initiator, carried by every call.
public struct TraceContext: Sendable, Hashable {
    /// The trace and span ids as minted or received; spelled as text only when read (see
    /// ``LazyIdentifier``: an unsampled request that nobody looks at never spells them).
    private var trace: LazyIdentifier
    private var span: LazyIdentifier
    private var parent: LazyIdentifier?

    /// The id shared by every span of one request's journey.
    public var traceID: String {
        get { self.trace.text }
        set { self.trace = LazyIdentifier(newValue) }
    }
    /// This hop's span id.
    public var spanID: String {
        get { self.span.text }
        set { self.span = LazyIdentifier(newValue) }
    }
    /// The span that caused this one, if any.
    public var parentID: String? {
        get { self.parent?.text }
        set { self.parent = newValue.map(LazyIdentifier.init) }
    }
    /// Whether the spans of this trace are recorded (decided once, at the initiator, by
    /// ``TraceSampler``; every hop follows the decision).
    public var sampled: Bool
    /// The caller's W3C `tracestate` (vendors' entries), carried untouched to every call of
    /// the request; `nil` when the caller sent none.
    public var state: String?

    /// Creates a `TraceContext` from its parts.
    public init(traceID: String, spanID: String, parentID: String? = nil, sampled: Bool = false, state: String? = nil) {
        self.init(trace: LazyIdentifier(traceID), span: LazyIdentifier(spanID), parent: parentID.map(LazyIdentifier.init), sampled: sampled, state: state)
    }

    private init(trace: LazyIdentifier, span: LazyIdentifier, parent: LazyIdentifier?, sampled: Bool, state: String?) {
        self.trace = trace
        self.span = span
        self.parent = parent
        self.sampled = sampled
        self.state = state
    }

    /// A new root trace with fresh ids.
    public static func root(sampled: Bool = false) -> TraceContext {
        TraceContext(trace: .trace(), span: .span(), parent: nil, sampled: sampled, state: nil)
    }

    /// A child span of this one: same trace and sampling, fresh span id, this span as parent.
    public func child() -> TraceContext {
        TraceContext(trace: self.trace, span: .span(), parent: self.span, sampled: self.sampled, state: self.state)
    }
}

extension TraceContext {
    var json: JSONValue {
        var fields: [String: JSONValue] = ["traceId": .string(self.traceID), "spanId": .string(self.spanID)]
        if let parentID { fields["parentId"] = .string(parentID) }
        if self.sampled { fields["sampled"] = true }
        if let state { fields["tracestate"] = .string(state) }
        return .object(fields)
    }

    init?(json: JSONValue?) {
        guard let traceID = json?["traceId"]?.stringValue, let spanID = json?["spanId"]?.stringValue else { return nil }
        self.init(
            traceID: traceID, spanID: spanID, parentID: json?["parentId"]?.stringValue, sampled: json?["sampled"]?.boolValue ?? false,
            state: json?["tracestate"]?.stringValue
        )
    }
}
