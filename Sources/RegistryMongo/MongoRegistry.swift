import Foundation
import Synchronization
import SkyLib
public import RegistryKit

/// The registry for clusters of more than one host: MongoDB through libmongoc.
///
/// Collections: `nodes` (one document per node, `_id` = node id), `events`, `routes`,
/// `leases`, `spans`, `commands`. Indexes are created at start: service+version+region lookups, address, and a TTL
/// index on `expireAt` (heartbeat + 10 × TTL) as a backstop should every reaper be down.
/// Every call runs on the client pool's own threads. Each role is implemented in its own file
/// (`MongoRegistry+NodeDirectory.swift` …).
public final class MongoRegistry: Registry {
    /// The client pool every role's calls go through.
    let pool: MongoClientPool
    /// The URI without its credentials, for logs and messages.
    private let uriDescription: String
    /// Whether the indexes are made: a server down at start gets them on the first call that
    /// reaches it.
    private let indexesReady = Mutex(false)

    /// Connects to `uri` (`mongodb://host:port/db`; the database defaults to `skynet`) and
    /// creates the indexes. An unreachable server is not an error here: processes start while
    /// the registry is down and catch up (indexes included) when it is back.
    /// - Throws: ``SkyError`` with code `.configuration` when the URI is invalid.
    public init(uri: String) async throws {
        self.uriDescription = RegistryAddress.mongodb(uri: uri).description
        do {
            self.pool = try MongoClientPool(uriString: uri)
        } catch {
            throw SkyError(.configuration, "bad MongoDB address \(self.uriDescription): \(error.message)")
        }
        try? await self.ensureIndexes()
    }

    /// Creates the indexes once; until that succeeded, every call tries again first.
    ///
    /// `createIndexes` commands rather than `mongoc_collection_create_indexes_with_opts`, which
    /// libmongoc 1.23 (Debian's) does not have. Each index and why:
    /// - `nodes`: service + version + region, what routers and `sky dns` look nodes up by;
    ///   address, what a registration clears stale records by; and a TTL index on `expireAt`
    ///   (ten TTLs after the last heartbeat), a backstop for when every reaper is down.
    /// - `events`: a TTL of a week, so the log stays recent history.
    /// - `spans`: by trace (what `sky trace` reads) and a TTL of a day.
    /// - `commands`: by target and state (what a node's claim reads on every heartbeat) and a
    ///   TTL of a day.
    /// - `dedupe`: a TTL at each answer's window end.
    ///
    /// TTL expiry is coarse (the server sweeps about once a minute): the drivers never rely on
    /// it for correctness, only for size.
    func ensureIndexes() async throws {
        if self.indexesReady.withLock({ $0 }) { return }
        _ = try await self.pool.command([
                ("createIndexes", "nodes"),
                ("indexes", .array([
                    .document([("key", .document([("service", 1), ("version", 1), ("region", 1)])), ("name", "service_version_region")]),
                    .document([("key", .document([("address", 1)])), ("name", "address")]),
                    .document([("key", .document([("expireAt", 1)])), ("name", "expireAt_ttl"), ("expireAfterSeconds", 0)]),
                ])),
            ])
            _ = try await self.pool.command([
                ("createIndexes", "events"),
                ("indexes", .array([
                    .document([("key", .document([("atDate", 1)])), ("name", "atDate_ttl"), ("expireAfterSeconds", .json(.int(7 * 86400)))]),
                ])),
            ])
        _ = try await self.pool.command([
                ("createIndexes", "spans"),
                ("indexes", .array([
                    .document([("key", .document([("traceId", 1)])), ("name", "traceId")]),
                    .document([("key", .document([("startDate", 1)])), ("name", "startDate_ttl"), ("expireAfterSeconds", .json(.int(86400)))]),
                ])),
            ])
        _ = try await self.pool.command([
                ("createIndexes", "commands"),
                ("indexes", .array([
                    .document([("key", .document([("target", 1), ("state", 1)])), ("name", "target_state")]),
                    .document([("key", .document([("issuedDate", 1)])), ("name", "issuedDate_ttl"), ("expireAfterSeconds", .json(.int(86400)))]),
                ])),
            ])
        _ = try await self.pool.command([
                ("createIndexes", "dedupe"),
                ("indexes", .array([
                    .document([("key", .document([("expireAtDate", 1)])), ("name", "expireAtDate_ttl"), ("expireAfterSeconds", 0)]),
                ])),
            ])
        self.indexesReady.withLock { $0 = true }
    }

    /// The URI without its credentials (user and password are never logged or shown).
    public var displayName: String { self.uriDescription }

    /// Stops the client pool's threads.
    public func shutdown() async {
        await self.pool.shutdown()
    }

    /// Runs one operation of a role, the indexes first when they are not made yet (the server may
    /// have been down at start); a failure that is not already a `SkyError` becomes a retryable
    /// registry error naming what was being done.
    func run<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            try await self.ensureIndexes()
            return try await body()
        } catch let error as SkyError {
            throw error
        } catch {
            throw SkyError(.registry, "\(what) in \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    /// Runs `find` and follows the cursor to the end.
    /// - Parameter projection: the fields to return, when not all of them.
    func find(
        _ collection: String, filter: [(String, MongoValue)], sort: [(String, MongoValue)], limit: Int? = nil, projection: [String]? = nil
    ) async throws -> [JSONValue] {
        var command: [(String, MongoValue)] = [
            ("find", .json(.string(collection))), ("filter", .document(MongoDocument(filter))), ("sort", .document(MongoDocument(sort))),
            ("batchSize", 1000),
        ]
        if let limit { command.append(("limit", .json(.int(Int64(limit))))) }
        if let projection { command.append(("projection", .document(MongoDocument(projection.map { ($0, MongoValue.json(.int(1))) })))) }
        var reply = try await self.pool.command(MongoDocument(command))
        var documents = reply["cursor"]?["firstBatch"]?.arrayValue ?? []
        while let cursorID = reply["cursor"]?["id"]?.intValue, cursorID != 0 {
            reply = try await self.pool.command([("getMore", .json(.int(cursorID))), ("collection", .json(.string(collection)))])
            documents += reply["cursor"]?["nextBatch"]?.arrayValue ?? []
        }
        return documents
    }

    /// Deletes every matching document and answers how many went.
    func delete(_ collection: String, _ filter: [(String, MongoValue)]) async throws -> Int64 {
        let reply = try await self.pool.command([
            ("delete", .json(.string(collection))),
            ("deletes", .array([.document([("q", .document(MongoDocument(filter))), ("limit", 0)])])),
        ])
        return reply["n"]?.intValue ?? 0
    }

    /// A document with `_id` = `id`, the fields of a JSON object (sorted; its own `id`, if
    /// any, left out), and one BSON date for a TTL index.
    static func document(id: String, fields json: JSONValue, date: (name: String, value: Date)) -> MongoValue {
        var fields: [(String, MongoValue)] = [("_id", .json(.string(id)))]
        if case .object(let values) = json {
            for key in values.keys.sorted() where key != "id" { fields.append((key, .json(values[key]!))) }
        }
        fields.append((date.name, .date(Int64(date.value.timeIntervalSince1970 * 1000))))
        return .document(MongoDocument(fields))
    }

    /// When the TTL index may delete a node: ten TTLs after its heartbeat, at least a minute. Only
    /// a backstop for when every reaper is down; the reaper removes a dead node after one TTL.
    static func expiry(at date: Date, ttl: Double) -> Int64 {
        Int64((date.timeIntervalSince1970 + max(ttl * 10, 60)) * 1000)
    }

    /// A node record's fields as stored (its id is the document's `_id`).
    static func fields(of node: NodeRecord) -> [(String, MongoValue)] {
        [
            ("kind", .json(.string(node.kind.rawValue))), ("service", .json(.string(node.service))),
            ("version", .json(.string(node.version))), ("region", .json(.string(node.region))),
            ("environment", .json(.string(node.environment))),
            ("host", .json(.string(node.host))), ("address", .json(.string(node.address))),
            ("pid", .json(.int(Int64(node.pid)))),
            ("startedAt", .json(.double(node.startedAt.timeIntervalSince1970))),
            ("heartbeatAt", .json(.double(node.heartbeatAt.timeIntervalSince1970))),
            ("status", .json(.string(node.status.rawValue))), ("ttl", .json(.double(node.ttl))),
            ("stats", .json(.object(node.stats.mapValues { .int($0) }))),
            ("expireAt", .date(Self.expiry(at: node.heartbeatAt, ttl: node.ttl))),
        ]
    }

    /// A node record from its document; missing fields read as empty (a record written by an older
    /// `sky`).
    static func node(from document: JSONValue) -> NodeRecord {
        var stats: [String: Int64] = [:]
        for (key, value) in document["stats"]?.objectValue ?? [:] { stats[key] = value.intValue }
        return NodeRecord(
            id: document["_id"]?.stringValue ?? "",
            kind: NodeKind(rawValue: document["kind"]?.stringValue ?? "") ?? .service,
            service: document["service"]?.stringValue ?? "",
            version: document["version"]?.stringValue ?? "",
            region: document["region"]?.stringValue ?? "",
            environment: document["environment"]?.stringValue ?? NodeRecord.defaultEnvironment,
            host: document["host"]?.stringValue ?? "",
            address: document["address"]?.stringValue ?? "",
            pid: Int32(truncatingIfNeeded: document["pid"]?.intValue ?? 0),
            startedAt: Date(timeIntervalSince1970: document["startedAt"]?.doubleValue ?? 0),
            heartbeatAt: Date(timeIntervalSince1970: document["heartbeatAt"]?.doubleValue ?? 0),
            status: NodeStatus(rawValue: document["status"]?.stringValue ?? "") ?? .starting,
            ttl: document["ttl"]?.doubleValue ?? 3,
            stats: stats
        )
    }
}
