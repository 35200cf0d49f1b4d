public import Foundation

/// One request travelling through a route: what initiators create and services receive.
///
/// On the wire it is the JSON object documented in `docs/PROTOCOL.md`:
/// `{"id", "route", "step", "payload", "meta", "trace", "deadline", "attempt"}`.
public struct RequestEnvelope: Sendable, Hashable {
    /// Unique id of the request (a UUID unless the initiator had one).
    public var id: String {
        get { self.identifier.text }
        set { self.identifier = LazyIdentifier(newValue) }
    }
    /// The id as minted or received, spelled only when read (most requests never are): hold
    /// this rather than ``id`` where the id may not be needed, as in a request's logger.
    public private(set) var identifier: LazyIdentifier
    /// The route being run.
    public var route: String
    /// The step's service when the envelope is sent to a service, otherwise `nil`.
    public var step: String?
    /// The document: any JSON value.
    public var payload: JSONValue
    /// String facts about the request: source, file name, row number, message id …
    public var meta: [String: String]
    /// Trace position of this hop.
    public var trace: TraceContext
    /// When the whole route must be finished, as milliseconds since 1970 (UTC); `nil` for none.
    public var deadline: Int64?
    /// 1 for the first call of a step, 2 for its first retry, and so on.
    public var attempt: Int

    /// Creates a `RequestEnvelope` from its parts.
    public init(
        id: String? = nil,
        route: String,
        step: String? = nil,
        payload: JSONValue,
        meta: [String: String] = [:],
        trace: TraceContext = .root(sampled: false),
        deadline: Int64? = nil,
        attempt: Int = 1
    ) {
        self.identifier = id.map(LazyIdentifier.init) ?? .request()
        self.route = route
        self.step = step
        self.payload = payload
        self.meta = meta
        self.trace = trace
        self.deadline = deadline
        self.attempt = attempt
    }

    /// The deadline as a `Date`.
    public var deadlineDate: Date? {
        self.deadline.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// Whether a drop folder, a CSV file or a STOMP queue sent it (`meta.source`): such a
    /// request may wait (for a rate slot, for a duplicate in flight) as long as it takes, since
    /// its initiator bounds what is in flight and nobody waits on a socket for it.
    public var isFromBulkInitiator: Bool {
        ["files", "csv", "stomp"].contains(self.meta["source"] ?? "")
    }

    /// Milliseconds left before the deadline (negative when passed), or `nil` without one.
    public var remainingMilliseconds: Int64? {
        self.deadline.map { $0 - WallClock.epochMilliseconds() }
    }
}

extension RequestEnvelope {
    /// The envelope's wire JSON, byte for byte what `JSONWriter` writes of ``json`` (keys
    /// sorted), written straight from the fields: a call over the wire builds no document of
    /// the envelope around its payload (the dictionary, its hashing and its sort showed in the
    /// router's profile, once per call).
    /// - Parameters:
    ///   - bytes: where the JSON text goes (appended).
    ///   - traceID: ``trace``'s trace id, as the caller spelled it for the call's headers (a
    ///     minted id is spelled anew on every read: once per call is enough).
    ///   - spanID: ``trace``'s span id, likewise.
    public func appendWireJSON(to bytes: inout [UInt8], traceID: String, spanID: String) {
        // In the order JSONWriter sorts the keys: attempt, deadline, id, meta, payload, route,
        // step, trace; and in the trace: parentId, sampled, spanId, traceId, tracestate.
        bytes.append(UInt8(ascii: "{"))
        JSONWriter.appendKey("attempt", first: true, to: &bytes)
        JSONWriter.appendInt(Int64(self.attempt), to: &bytes)
        if let deadline = self.deadline {
            JSONWriter.appendKey("deadline", to: &bytes)
            JSONWriter.appendInt(deadline, to: &bytes)
        }
        JSONWriter.appendKey("id", to: &bytes)
        JSONWriter.appendString(self.id, to: &bytes, asciiOnly: false)
        JSONWriter.appendKey("meta", to: &bytes)
        JSONWriter.appendStrings(self.meta, to: &bytes)
        JSONWriter.appendKey("payload", to: &bytes)
        JSONWriter.append(self.payload, to: &bytes)
        JSONWriter.appendKey("route", to: &bytes)
        JSONWriter.appendString(self.route, to: &bytes, asciiOnly: false)
        if let step = self.step {
            JSONWriter.appendKey("step", to: &bytes)
            JSONWriter.appendString(step, to: &bytes, asciiOnly: false)
        }
        JSONWriter.appendKey("trace", to: &bytes)
        var first = true
        bytes.append(UInt8(ascii: "{"))
        if let parentID = self.trace.parentID {
            JSONWriter.appendKey("parentId", first: first, to: &bytes)
            JSONWriter.appendString(parentID, to: &bytes, asciiOnly: false)
            first = false
        }
        if self.trace.sampled {
            JSONWriter.appendKey("sampled", first: first, to: &bytes)
            bytes.append(contentsOf: "true".utf8)
            first = false
        }
        JSONWriter.appendKey("spanId", first: first, to: &bytes)
        JSONWriter.appendString(spanID, to: &bytes, asciiOnly: false)
        JSONWriter.appendKey("traceId", to: &bytes)
        JSONWriter.appendString(traceID, to: &bytes, asciiOnly: false)
        if let state = self.trace.state {
            JSONWriter.appendKey("tracestate", to: &bytes)
            JSONWriter.appendString(state, to: &bytes, asciiOnly: false)
        }
        bytes.append(contentsOf: [UInt8(ascii: "}"), UInt8(ascii: "}")])
    }

    /// The envelope as its wire JSON object.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(self.id),
            "route": .string(self.route),
            "payload": self.payload,
            "meta": .object(self.meta.mapValues { .string($0) }),
            "trace": self.trace.json,
            "attempt": .int(Int64(self.attempt)),
        ]
        if let step { fields["step"] = .string(step) }
        if let deadline { fields["deadline"] = .int(deadline) }
        return .object(fields)
    }

    /// Reads an envelope from its wire JSON object.
    /// - Throws: ``SkyError`` with code `.badRequest` naming the field that is missing or wrong.
    public init(json: JSONValue) throws(SkyError) {
        guard case .object(let fields) = json else {
            throw SkyError(.badRequest, "request envelope must be a JSON object, not \(json.typeName)")
        }
        guard let route = fields["route"]?.stringValue else {
            throw SkyError(.badRequest, "request envelope needs a string field \"route\"")
        }
        var meta: [String: String] = [:]
        if let metaValue = fields["meta"], metaValue != .null {
            guard case .object(let metaFields) = metaValue else {
                throw SkyError(.badRequest, "request envelope field \"meta\" must be an object of strings")
            }
            for (key, value) in metaFields {
                guard let string = value.stringValue else {
                    throw SkyError(.badRequest, "request envelope field \"meta.\(key)\" must be a string, not \(value.typeName)")
                }
                meta[key] = string
            }
        }
        if let deadline = fields["deadline"], deadline != .null, deadline.intValue == nil {
            throw SkyError(.badRequest, "request envelope field \"deadline\" must be milliseconds since 1970")
        }
        self.init(
            id: fields["id"]?.stringValue ?? Identifiers.requestID(),
            route: route,
            step: fields["step"]?.stringValue,
            payload: fields["payload"] ?? .null,
            meta: meta,
            trace: TraceContext(json: fields["trace"]) ?? .root(),
            deadline: fields["deadline"]?.intValue,
            attempt: Int(fields["attempt"]?.intValue ?? 1)
        )
    }
}
