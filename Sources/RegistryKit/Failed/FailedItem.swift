public import Foundation
public import SkyLib

/// One input that failed its route, kept in the registry so it can be seen and sent again from
/// one place (`sky failed`, the dashboard), whichever initiator it came through.
///
/// Life of an item: an initiator records it **failed** (and parks the input as it always did:
/// `.failed/`, `rejects.csv`, the dead-letter queue); `sky failed redrive` moves it to
/// **redrive**; the node that runs its source claims it, **running**, and puts the input back
/// (the file into its folder, the rows as a new CSV file, the message onto its destination,
/// the HTTP body through its route); a re-run that succeeds makes it **done**, one that fails
/// makes it **failed** again with one more attempt. `sky failed drop` makes it **dropped**,
/// with a reason. Every move is conditional on the state the mover saw, so two operators (or
/// two nodes) never act on one item twice.
public struct FailedItem: Sendable, Hashable {
    /// Which initiator the input came through.
    public typealias Source = InputSource

    /// Where an item is in its life.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case failed, redrive, running, done, dropped

        /// Whether it still needs someone: failed, or on its way through a redrive.
        public var isOpen: Bool { self == .failed || self == .redrive || self == .running }
    }

    /// The longest input kept with an item, in bytes of UTF-8; a longer one is recorded without
    /// its text (its size says how big it was), and is redriven from where its source parked it.
    public static let inputLimit = 256 * 1024

    /// Unique id. Files, CSV rows and STOMP messages get one derived from where they came from
    /// (``stableID(route:source:resource:key:)``), so an input that fails again after a redrive
    /// is the same item, one attempt more.
    public var id: String
    /// The route it ran.
    public var route: String
    /// The initiator it came through.
    public var source: Source
    /// The folder (files, CSV), the destination (STOMP), or `http`.
    public var resource: String
    /// The input as text (a file's text, the CSV row as it was, a message's body, an HTTP body),
    /// when it is valid UTF-8 of at most ``inputLimit`` bytes.
    public var input: String?
    /// The input's size in bytes, kept or not.
    public var inputBytes: Int
    /// What a redrive needs beside the input: `file` (files: its name in `.failed/`; CSV: the
    /// file the row was in), `line` and `header` (CSV: the row's line and the header's fields as
    /// a JSON array), `headers` (STOMP and HTTP: a JSON object), `orderKey` (the input's key in
    /// an ordered source), `hold` (`true` when its lane waits for it).
    public var details: [String: String]
    /// The error's stable code (`step_failed`, `rejected`, `malformed_row` …).
    public var code: String
    /// The error, for a person.
    public var message: String
    /// The step that failed (its index), when one did.
    public var step: Int?
    /// The service of that step.
    public var service: String?
    /// Times the input ran and failed: 1 when first recorded, one more per failed redrive.
    public var attempts: Int
    /// Its trace, when it was traced.
    public var traceID: String?
    /// The node that recorded it.
    public var node: String
    /// When it last failed.
    public var failedAt: Date
    /// Where it is in its life.
    public var state: State
    /// Who last moved it (`sky failed redrive by alice@ops-1`, or the node that ran it again).
    public var actor: String
    /// Why it was dropped, or what came of its redrive.
    public var note: String
    /// When it last changed.
    public var updatedAt: Date

    /// Creates a failed item; `input` is kept only when it fits ``inputLimit``.
    public init(
        id: String = Identifiers.nodeID(), route: String, source: Source, resource: String, input: [UInt8]?, details: [String: String] = [:],
        code: String, message: String, step: Int? = nil, service: String? = nil, attempts: Int = 1, traceID: String? = nil, node: String,
        failedAt: Date = Date(), state: State = .failed, actor: String = "", note: String = "", updatedAt: Date? = nil
    ) {
        self.id = id
        self.route = route
        self.source = source
        self.resource = resource
        self.inputBytes = input?.count ?? 0
        self.input = input.flatMap { bytes in bytes.count <= Self.inputLimit ? String(validating: bytes, as: UTF8.self) : nil }
        self.details = details
        self.code = code
        self.message = message
        self.step = step
        self.service = service
        self.attempts = attempts
        self.traceID = traceID
        self.node = node
        self.failedAt = failedAt
        self.state = state
        self.actor = actor
        self.note = note
        self.updatedAt = updatedAt ?? failedAt
    }

    /// An id that is the same each time the same input fails: a hash of the route, source,
    /// resource and `key` (a file's name; a CSV file's name and line; a message's id).
    public static func stableID(route: String, source: Source, resource: String, key: String) -> String {
        // FNV-1a over the parts, twice with different offsets: 128 bits, printed as hex.
        var first: UInt64 = 0xcbf2_9ce4_8422_2325
        var second: UInt64 = 0x6c62_272e_07bb_0142
        for byte in "\(route)\u{0}\(source.rawValue)\u{0}\(resource)\u{0}\(key)".utf8 {
            first = (first ^ UInt64(byte)) &* 0x100_0000_01b3
            second = (second ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(first, radix: 16) + "-" + String(second, radix: 16)
        return "\(source.rawValue)-\(hex)"
    }

    /// This failure as stored over `old`, the same input's earlier record: failed again, one
    /// attempt more, its input kept when this record has none.
    public func recorded(over old: FailedItem?) -> FailedItem {
        guard let old else { return self }
        var item = self
        item.attempts = old.attempts + 1
        item.state = .failed
        if item.input == nil { (item.input, item.inputBytes) = (old.input, old.inputBytes) }
        return item
    }

    /// A short id for tables: the last 12 characters, which differ between items.
    public var shortID: String { String(self.id.suffix(12)) }
}

extension FailedItem {
    /// The item as JSON (stored by both registries, printed by `sky failed … --json`).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(self.id), "route": .string(self.route), "source": .string(self.source.rawValue), "resource": .string(self.resource),
            "inputBytes": .int(Int64(self.inputBytes)), "details": .object(self.details.mapValues { .string($0) }), "code": .string(self.code),
            "message": .string(self.message), "attempts": .int(Int64(self.attempts)), "node": .string(self.node),
            "failedAt": .double(self.failedAt.timeIntervalSince1970), "state": .string(self.state.rawValue), "actor": .string(self.actor),
            "note": .string(self.note), "updatedAt": .double(self.updatedAt.timeIntervalSince1970),
        ]
        if let input { fields["input"] = .string(input) }
        if let step { fields["step"] = .int(Int64(step)) }
        if let service { fields["service"] = .string(service) }
        if let traceID { fields["traceId"] = .string(traceID) }
        return .object(fields)
    }

    /// Reads ``json`` back; `nil` when a required field is missing or unknown (written by a newer
    /// `sky`).
    public init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue ?? json["_id"]?.stringValue, let route = json["route"]?.stringValue,
            let source = json["source"]?.stringValue.flatMap(Source.init(rawValue:)),
            let state = json["state"]?.stringValue.flatMap(State.init(rawValue:))
        else { return nil }
        self.init(
            id: id, route: route, source: source, resource: json["resource"]?.stringValue ?? "", input: nil,
            details: (json["details"]?.objectValue ?? [:]).compactMapValues(\.stringValue), code: json["code"]?.stringValue ?? "",
            message: json["message"]?.stringValue ?? "", step: json["step"]?.intValue.map { Int($0) }, service: json["service"]?.stringValue,
            attempts: Int(json["attempts"]?.intValue ?? 1), traceID: json["traceId"]?.stringValue, node: json["node"]?.stringValue ?? "",
            failedAt: Date(timeIntervalSince1970: json["failedAt"]?.doubleValue ?? 0), state: state, actor: json["actor"]?.stringValue ?? "",
            note: json["note"]?.stringValue ?? "", updatedAt: Date(timeIntervalSince1970: json["updatedAt"]?.doubleValue ?? 0)
        )
        self.input = json["input"]?.stringValue
        self.inputBytes = Int(json["inputBytes"]?.intValue ?? 0)
    }
}
