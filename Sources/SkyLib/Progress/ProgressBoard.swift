public import Foundation
import Synchronization

/// Long work in flight in one process — CSV files being read, drop folders working through a
/// backlog — with how far each has got, for `/debug/progress`, the dashboard's bars and
/// `sky progress`.
///
/// The initiator doing the work holds a ``ProgressBoard/Entry`` and moves it forward with an
/// atomic store per update (no lock on the row path); readers take a ``Snapshot`` when asked.
public final class ProgressBoard: Sendable {
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    /// Creates an empty board.
    public init() {}

    /// What is counted: rows of a CSV file, files of a drop folder.
    public enum Kind: String, Sendable {
        /// One CSV file, its rows; the bar is bytes read of the file's size.
        case csv
        /// One drop folder's backlog: files done of files found.
        case files
    }

    /// One piece of work in flight; gone from the board when ended.
    public final class Entry: Sendable {
        /// CSV or files.
        public let kind: Kind
        /// The route the work runs through.
        public let route: String
        /// The file (CSV) or the folder (files).
        public let name: String
        /// When it started.
        public let startedAt: Date
        private let started = ContinuousClock.now
        private let doneCount = Atomic<Int64>(0)
        private let totalCount = Atomic<Int64>(0)
        private let bytes = Atomic<Int64>(0)
        private let totalBytes: Int64
        private let firstBytes: Int64

        init(kind: Kind, route: String, name: String, totalBytes: Int64, startingAt bytes: Int64) {
            self.kind = kind
            self.route = route
            self.name = name
            self.startedAt = Date()
            self.totalBytes = totalBytes
            self.firstBytes = bytes
            self.bytes.store(bytes, ordering: .relaxed)
        }

        /// Rows or files done so far.
        public func done(_ count: Int64) { self.doneCount.store(count, ordering: .relaxed) }
        /// Files known so far (done, in flight and waiting); CSV entries use bytes instead.
        public func total(_ count: Int64) { self.totalCount.store(count, ordering: .relaxed) }
        /// Bytes of the file read and answered so far.
        public func bytesDone(_ count: Int64) { self.bytes.store(count, ordering: .relaxed) }

        /// The entry as it stands now.
        public var snapshot: Snapshot {
            let elapsed = max(0.001, (ContinuousClock.now - self.started).seconds)
            let done = self.doneCount.load(ordering: .relaxed)
            switch self.kind {
            case .csv:
                let bytes = self.bytes.load(ordering: .relaxed)
                let fraction = self.totalBytes > 0 ? min(1, Double(bytes) / Double(self.totalBytes)) : 0
                // Time left from this run's own pace through the file (a resumed file's earlier
                // bytes are not this run's).
                let pace = Double(bytes - self.firstBytes) / elapsed
                let left = pace > 0 ? Double(self.totalBytes - bytes) / pace : nil
                return Snapshot(
                    kind: self.kind, route: self.route, name: self.name, unit: "rows", done: done, total: nil, fraction: fraction,
                    rate: Double(done) / elapsed, secondsLeft: left, bytesDone: bytes, bytesTotal: self.totalBytes, startedAt: self.startedAt
                )
            case .files:
                let total = max(done, self.totalCount.load(ordering: .relaxed))
                let rate = Double(done) / elapsed
                return Snapshot(
                    kind: self.kind, route: self.route, name: self.name, unit: "files", done: done, total: total,
                    fraction: total > 0 ? Double(done) / Double(total) : 0, rate: rate,
                    secondsLeft: rate > 0 ? Double(total - done) / rate : nil, bytesDone: nil, bytesTotal: nil, startedAt: self.startedAt
                )
            }
        }
    }

    /// A piece of work as it stood when asked.
    public struct Snapshot: Sendable, Hashable {
        /// CSV or files.
        public var kind: Kind
        /// The route.
        public var route: String
        /// The file or folder.
        public var name: String
        /// `rows` or `files`.
        public var unit: String
        /// Rows or files done.
        public var done: Int64
        /// Files known in all (files only: a CSV file's row count is not known before its end).
        public var total: Int64?
        /// Done, 0 to 1: bytes for CSV, files for drop folders.
        public var fraction: Double
        /// Rows or files a second since the start.
        public var rate: Double
        /// Seconds left at this pace; `nil` before there is a pace.
        public var secondsLeft: Double?
        /// CSV: bytes read and answered, of `bytesTotal`.
        public var bytesDone: Int64?
        /// CSV: the file's size.
        public var bytesTotal: Int64?
        /// When the work started.
        public var startedAt: Date

        /// The snapshot as JSON (`/debug/progress`, `sky progress --json`).
        public var json: JSONValue {
            var fields: [String: JSONValue] = [
                "kind": .string(self.kind.rawValue), "route": .string(self.route), "name": .string(self.name), "unit": .string(self.unit),
                "done": .int(self.done), "fraction": .double((self.fraction * 10_000).rounded() / 10_000),
                "rate": .double((self.rate * 10).rounded() / 10), "startedAt": .double(self.startedAt.timeIntervalSince1970),
            ]
            if let total { fields["total"] = .int(total) }
            if let secondsLeft { fields["secondsLeft"] = .double((secondsLeft * 10).rounded() / 10) }
            if let bytesDone { fields["bytesDone"] = .int(bytesDone) }
            if let bytesTotal { fields["bytesTotal"] = .int(bytesTotal) }
            return .object(fields)
        }

        /// Reads a snapshot written by ``json``.
        public init?(json: JSONValue) {
            guard let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)), let name = json["name"]?.stringValue else { return nil }
            self.init(
                kind: kind, route: json["route"]?.stringValue ?? "", name: name, unit: json["unit"]?.stringValue ?? "",
                done: json["done"]?.intValue ?? 0, total: json["total"]?.intValue, fraction: json["fraction"]?.doubleValue ?? 0,
                rate: json["rate"]?.doubleValue ?? 0, secondsLeft: json["secondsLeft"]?.doubleValue, bytesDone: json["bytesDone"]?.intValue,
                bytesTotal: json["bytesTotal"]?.intValue, startedAt: Date(timeIntervalSince1970: json["startedAt"]?.doubleValue ?? 0)
            )
        }

        /// Creates a `Snapshot` from its parts.
        public init(
            kind: Kind, route: String, name: String, unit: String, done: Int64, total: Int64?, fraction: Double, rate: Double,
            secondsLeft: Double?, bytesDone: Int64?, bytesTotal: Int64?, startedAt: Date
        ) {
            self.kind = kind
            self.route = route
            self.name = name
            self.unit = unit
            self.done = done
            self.total = total
            self.fraction = fraction
            self.rate = rate
            self.secondsLeft = secondsLeft
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
            self.startedAt = startedAt
        }
    }

    /// Puts a new piece of work on the board. `totalBytes` and `startingAt` are a CSV file's
    /// size and where reading starts (after a checkpoint, not 0).
    public func begin(_ kind: Kind, route: String, name: String, totalBytes: Int64 = 0, startingAt: Int64 = 0) -> Entry {
        let entry = Entry(kind: kind, route: route, name: name, totalBytes: totalBytes, startingAt: startingAt)
        self.entries.withLock { $0[ObjectIdentifier(entry)] = entry }
        return entry
    }

    /// Takes the work off the board.
    public func end(_ entry: Entry) {
        _ = self.entries.withLock { $0.removeValue(forKey: ObjectIdentifier(entry)) }
    }

    /// Everything in flight, oldest first.
    public var snapshots: [Snapshot] {
        self.entries.withLock { Array($0.values) }.map(\.snapshot).sorted { ($0.startedAt, $0.name) < ($1.startedAt, $1.name) }
    }

    /// The `/debug/progress` document: `{"progress": [...]}`.
    public var json: JSONValue { ["progress": .array(self.snapshots.map(\.json))] }
}
