public import Foundation
import Synchronization
public import SkyLib
public import RegistryKit

/// The registry for clusters of more than one host: MongoDB through libmongoc.
///
/// Collections: `nodes` (one document per node, `_id` = node id), `events`, `routes`,
/// `leases`, `spans`, `commands`. Indexes are created at start: service+version+region lookups, address, and a TTL
/// index on `expireAt` (heartbeat + 10 × TTL) as a backstop should every reaper be down.
/// Every call runs on the client pool's own threads.
public final class MongoRegistry: Registry {
    private let pool: MongoClientPool
    private let uriDescription: String
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
    private func ensureIndexes() async throws {
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

    public var displayName: String { self.uriDescription }

    /// Stops the client pool's threads.
    public func shutdown() async {
        await self.pool.shutdown()
    }

    public func register(_ node: NodeRecord) async throws {
        try await self.run("registering \(node.service)") {
            _ = try await self.pool.command([
                ("delete", "nodes"),
                ("deletes", .array([.document([
                    ("q", .document([("address", .json(.string(node.address))), ("kind", .json(.string(node.kind.rawValue))), ("_id", .document([("$ne", .json(.string(node.id)))]))])),
                    ("limit", 0),
                ])])),
            ])
            _ = try await self.pool.command([
                ("update", "nodes"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(node.id)))])),
                    ("u", .document([("$set", .document(MongoDocument(Self.fields(of: node))))])),
                    ("upsert", true),
                ])])),
            ])
        }
    }

    public func heartbeat(nodeID: String, status: NodeStatus, stats: [String: Int64], at: Date) async throws -> Bool {
        try await self.run("heartbeat") {
            // The TTL backstop needs the node's ttl; it is stored, so compute expiry server-side
            // would need an aggregation update: keep it simple and read it from the record.
            let reply = try await self.pool.command([
                ("findAndModify", "nodes"),
                ("query", .document([("_id", .json(.string(nodeID)))])),
                ("update", .document([("$set", .document([
                    ("heartbeatAt", .json(.double(at.timeIntervalSince1970))),
                    ("status", .json(.string(status.rawValue))),
                    ("stats", .json(.object(stats.mapValues { .int($0) }))),
                ]))])),
                ("new", true),
            ])
            guard let node = reply["value"], node != .null else { return false }
            let ttl = node["ttl"]?.doubleValue ?? 3
            _ = try await self.pool.command([
                ("update", "nodes"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(nodeID)))])),
                    ("u", .document([("$set", .document([("expireAt", .date(Self.expiry(at: at, ttl: ttl)))]))])),
                ])])),
            ])
            return true
        }
    }

    public func deregister(nodeID: String) async throws {
        try await self.run("deregistering") {
            _ = try await self.delete("nodes", [("_id", .json(.string(nodeID)))])
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await self.run("reading nodes") {
            try await self.find("nodes", filter: [], sort: [("service", 1), ("startedAt", 1)]).map(Self.node(from:))
        }
    }

    public func reap(nodeID: String, heartbeatBefore before: Date) async throws -> Bool {
        try await self.run("reaping") {
            try await self.delete("nodes", [("_id", .json(.string(nodeID))), ("heartbeatAt", .document([("$lt", .json(.double(before.timeIntervalSince1970)))]))]) > 0
        }
    }

    public func record(_ event: RegistryEvent) async throws {
        try await self.run("recording an event") {
            // Sortable ids (time, then a random tail) keep "newest first" exact.
            let id = String(format: "%016llx", UInt64(event.at.timeIntervalSince1970 * 1_000_000)) + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            _ = try await self.pool.command([
                ("insert", "events"),
                ("documents", .array([.document([
                    ("_id", .json(.string(id))),
                    ("at", .json(.double(event.at.timeIntervalSince1970))),
                    ("atDate", .date(Int64(event.at.timeIntervalSince1970 * 1000))),
                    ("kind", .json(.string(event.kind))),
                    ("nodeID", .json(.string(event.nodeID))),
                    ("service", .json(.string(event.service))),
                    ("message", .json(.string(event.message))),
                ])])),
            ])
        }
    }

    public func events(limit: Int) async throws -> [RegistryEvent] {
        try await self.run("reading events") {
            try await self.find("events", filter: [], sort: [("_id", -1)], limit: limit).map { document in
                RegistryEvent(
                    at: Date(timeIntervalSince1970: document["at"]?.doubleValue ?? 0),
                    kind: document["kind"]?.stringValue ?? "",
                    nodeID: document["nodeID"]?.stringValue ?? "",
                    service: document["service"]?.stringValue ?? "",
                    message: document["message"]?.stringValue ?? ""
                )
            }
        }
    }

    public func recordSpans(_ spans: [Span]) async throws {
        guard !spans.isEmpty else { return }
        try await self.run("recording spans") {
            let documents: [MongoValue] = spans.map { span in
                Self.document(id: span.traceID + "-" + span.spanID + "-" + span.kind.rawValue, fields: span.json, date: ("startDate", span.start))
            }
            // Unordered: a span the server refuses (a duplicate id) does not stop the others
            // being written; the command still reports the write error, so the recorder counts
            // that batch as dropped although most of it landed.
            _ = try await self.pool.command([("insert", "spans"), ("documents", .array(documents)), ("ordered", false)])
        }
    }

    public func claimDedupe(route: String, key: String, owner: String, now: Date, expiresAt: Date, runningUntil: Date) async throws -> DedupeClaim {
        let id = route + "/" + key
        do {
            // Matches only a claim that ran out; otherwise the upsert collides on _id and the
            // duplicate key says "taken" (as the reaper's lease does).
            let reply = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    // `$and` spelled out: nx-27017 (the test server) matches any document for an
                    // update whose filter has `_id` beside a top-level `$or`.
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(id)))]),
                        .document([("$or", .array([
                            .document([("state", "done"), ("expiresAt", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                            .document([("state", "running"), ("runningUntil", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                        ]))]),
                    ]))])),
                    ("u", .document([("$set", .document([
                        ("state", "running"), ("owner", .json(.string(owner))), ("answer", .json(.null)),
                        ("expiresAt", .json(.double(expiresAt.timeIntervalSince1970))), ("runningUntil", .json(.double(runningUntil.timeIntervalSince1970))),
                        ("expireAtDate", .date(Int64(expiresAt.timeIntervalSince1970 * 1000))),
                    ]))])),
                    ("upsert", true),
                ])])),
            ])
            if (reply["n"]?.intValue ?? 0) > 0 { return .claimed }
        } catch let error as MongoError where error.isDuplicateKey {
            // Taken: read what it holds.
        } catch {
            throw SkyError(.registry, "claiming dedupe key in \(self.displayName) failed: \(error)", retryable: true)
        }
        return try await self.run("reading a dedupe key") {
            guard let document = try await self.find("dedupe", filter: [("_id", .json(.string(id)))], sort: [], limit: 1).first else { return .running(owner: "") }
            if document["state"]?.stringValue == "done", let text = document["answer"]?.stringValue, let answer = try? JSONParser.parse(text) { return .done(answer) }
            return .running(owner: document["owner"]?.stringValue ?? "")
        }
    }

    public func renewDedupe(route: String, key: String, owner: String, runningUntil: Date) async throws -> Bool {
        try await self.run("renewing a dedupe claim") {
            let reply = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(route + "/" + key)))]),
                        .document([("owner", .json(.string(owner)))]),
                        .document([("state", "running")]),
                    ]))])),
                    ("u", .document([("$set", .document([("runningUntil", .json(.double(runningUntil.timeIntervalSince1970)))]))])),
                ])])),
            ])
            return (reply["n"]?.intValue ?? 0) > 0
        }
    }

    public func completeDedupe(route: String, key: String, owner: String, answer: JSONValue) async throws {
        try await self.run("completing a dedupe key") {
            _ = try await self.pool.command([
                ("update", "dedupe"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(route + "/" + key))), ("owner", .json(.string(owner)))])),
                    ("u", .document([("$set", .document([("state", "done"), ("answer", .json(.string(JSONWriter.string(answer))))]))])),
                ])])),
            ])
        }
    }

    public func releaseDedupe(route: String, key: String, owner: String) async throws {
        try await self.run("releasing a dedupe key") {
            _ = try await self.pool.command([
                ("delete", "dedupe"),
                ("deletes", .array([.document([
                    ("q", .document([("_id", .json(.string(route + "/" + key))), ("owner", .json(.string(owner))), ("state", "running")])),
                    ("limit", 1),
                ])])),
            ])
        }
    }

    public func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws {
        guard !counts.isEmpty else { return }
        try await self.run("merging counts") {
            // One upsert per name: `$max` keeps the larger value, so the merge is a G-Counter's.
            let updates: [MongoValue] = counts.sorted(by: { $0.key < $1.key }).map { name, value in
                .document([
                    ("q", .document([("_id", .json(.string(nodeID + "/" + name)))])),
                    ("u", .document([
                        ("$max", .document([("value", .json(.int(value)))])),
                        ("$set", .document([
                            ("node", .json(.string(nodeID))), ("name", .json(.string(name))), ("updatedAt", .json(.double(at.timeIntervalSince1970))),
                        ])),
                    ])),
                    ("upsert", true),
                ])
            }
            _ = try await self.pool.command([("update", "counts"), ("updates", .array(updates)), ("ordered", false)])
        }
    }

    public func counts() async throws -> GCounter {
        try await self.run("reading counts") {
            var counter = GCounter()
            for document in try await self.find("counts", filter: [], sort: [("_id", 1)]) {
                guard let node = document["node"]?.stringValue, let name = document["name"]?.stringValue, let value = document["value"]?.intValue else { continue }
                counter.merge(name: name, nodeID: node, value: value)
            }
            return counter
        }
    }

    public func latestRouteSpans(limit: Int) async throws -> [Span] {
        try await self.run("reading spans") {
            try await self.find("spans", filter: [("kind", .json(.string(Span.Kind.route.rawValue)))], sort: [("start", -1)], limit: limit).compactMap(Span.init(json:))
        }
    }

    public func spans(traceID: String) async throws -> [Span] {
        try await self.run("reading spans") {
            try await self.find("spans", filter: [("traceId", .json(.string(traceID)))], sort: [("start", 1)]).compactMap(Span.init(json:))
        }
    }

    public func acquireLease(_ name: String, holder: String, duration: TimeInterval, now: Date) async throws -> Bool {
        do {
            try await self.ensureIndexes()
            // Matches only when the lease is ours or expired; otherwise the upsert collides with
            // the holder's document on _id, and the duplicate key says "taken".
            let reply = try await self.pool.command([
                ("update", "leases"),
                ("updates", .array([.document([
                    // `$and` spelled out, as for dedupe claims (nx-27017 and `_id` beside `$or`).
                    ("q", .document([("$and", .array([
                        .document([("_id", .json(.string(name)))]),
                        .document([("$or", .array([
                            .document([("holder", .json(.string(holder)))]),
                            .document([("expiresAt", .document([("$lt", .json(.double(now.timeIntervalSince1970)))]))]),
                        ]))]),
                    ]))])),
                    ("u", .document([("$set", .document([
                        ("holder", .json(.string(holder))),
                        ("expiresAt", .json(.double(now.timeIntervalSince1970 + duration))),
                    ]))])),
                    ("upsert", true),
                ])])),
            ])
            return (reply["n"]?.intValue ?? 0) > 0
        } catch let error as MongoError where error.isDuplicateKey {
            return false
        } catch {
            throw SkyError(.registry, "taking lease \(name) in \(self.displayName) failed: \(error)", retryable: true)
        }
    }

    public func storedRoutes() async throws -> [StoredRoute] {
        try await self.run("reading routes") {
            try await self.find("routes", filter: [], sort: [("_id", 1)]).map { document in
                StoredRoute(
                    name: document["_id"]?.stringValue ?? "",
                    yaml: document["yaml"]?.stringValue ?? "",
                    file: document["file"]?.stringValue ?? "",
                    revision: Int(document["revision"]?.intValue ?? 0),
                    updatedAt: Date(timeIntervalSince1970: document["updatedAt"]?.doubleValue ?? 0)
                )
            }
        }
    }

    public func storeRoutes(_ routes: [StoredRoute], prune: Bool) async throws -> [StoredRoute] {
        let existing = Dictionary(try await self.storedRoutes().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let now = Date().timeIntervalSince1970
        try await self.run("storing routes") {
            for route in routes where existing[route.name]?.yaml != route.yaml {
                _ = try await self.pool.command([
                    ("update", "routes"),
                    ("updates", .array([.document([
                        ("q", .document([("_id", .json(.string(route.name)))])),
                        ("u", .document([("$set", .document([
                            ("yaml", .json(.string(route.yaml))),
                            ("file", .json(.string(route.file))),
                            ("revision", .json(.int(Int64((existing[route.name]?.revision ?? 0) + 1)))),
                            ("updatedAt", .json(.double(now))),
                        ]))])),
                        ("upsert", true),
                    ])])),
                ])
            }
            if prune {
                let keep = Set(routes.map(\.name))
                for name in existing.keys where !keep.contains(name) {
                    _ = try await self.delete("routes", [("_id", .json(.string(name)))])
                }
            }
        }
        return try await self.storedRoutes()
    }

    public func sendCommands(_ commands: [NodeCommand]) async throws {
        guard !commands.isEmpty else { return }
        try await self.run("sending commands") {
            let documents: [MongoValue] = commands.map { command in
                // Pruned by the TTL index on issuedDate after a day.
                Self.document(id: command.id, fields: command.json, date: ("issuedDate", command.issuedAt))
            }
            _ = try await self.pool.command([("insert", "commands"), ("documents", .array(documents))])
        }
    }

    public func claimCommands(targets: [String], actions: Set<NodeCommand.Action>, actor: String, now: Date) async throws -> [NodeCommand] {
        guard !targets.isEmpty, !actions.isEmpty else { return [] }
        let pending: [(String, MongoValue)] = [
            ("target", .document([("$in", .json(.array(targets.map { .string($0) })))])),
            ("action", .document([("$in", .json(.array(actions.map { .string($0.rawValue) })))])),
            ("state", .json(.string(NodeCommand.State.pending.rawValue))),
            ("expiresAt", .document([("$gt", .json(.double(now.timeIntervalSince1970)))])),
        ]
        return try await self.run("claiming commands") {
            // Every node asks on every heartbeat and almost always there is nothing: a read
            // first, so an idle cluster sends the server no writes for it.
            guard try await !self.find("commands", filter: pending, sort: [], limit: 1).isEmpty else { return [] }
            // findAndModify changes one document atomically, so of several claimers exactly one
            // gets each command; loop until none is left.
            var claimed: [NodeCommand] = []
            while claimed.count < 100 {
                let reply = try await self.pool.command([
                    ("findAndModify", "commands"),
                    ("query", .document(MongoDocument(pending))),
                    ("update", .document([("$set", .document([
                        ("state", .json(.string(NodeCommand.State.acknowledged.rawValue))),
                        ("actor", .json(.string(actor))),
                        ("updatedAt", .json(.double(now.timeIntervalSince1970))),
                    ]))])),
                    ("new", true),
                ])
                guard let document = reply["value"], document != .null, let command = NodeCommand(json: document) else { break }
                claimed.append(command)
            }
            return claimed
        }
    }

    public func updateCommand(id: String, from: NodeCommand.State, to: NodeCommand.State, result: String, now: Date) async throws -> Bool {
        try await self.run("updating a command") {
            let reply = try await self.pool.command([
                ("update", "commands"),
                ("updates", .array([.document([
                    ("q", .document([("_id", .json(.string(id))), ("state", .json(.string(from.rawValue)))])),
                    ("u", .document([("$set", .document([
                        ("state", .json(.string(to.rawValue))), ("result", .json(.string(result))),
                        ("updatedAt", .json(.double(now.timeIntervalSince1970))),
                    ]))])),
                ])])),
            ])
            return (reply["nModified"]?.intValue ?? reply["n"]?.intValue ?? 0) > 0
        }
    }

    public func commands(ids: [String]) async throws -> [NodeCommand] {
        guard !ids.isEmpty else { return [] }
        return try await self.run("reading commands") {
            try await self.find(
                "commands", filter: [("_id", .document([("$in", .json(.array(ids.map { .string($0) })))]))], sort: [("issuedAt", 1)]
            ).compactMap(NodeCommand.init(json:))
        }
    }

    // MARK: helpers

    private func run<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
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
    private func find(_ collection: String, filter: [(String, MongoValue)], sort: [(String, MongoValue)], limit: Int? = nil) async throws -> [JSONValue] {
        var command: [(String, MongoValue)] = [
            ("find", .json(.string(collection))), ("filter", .document(MongoDocument(filter))), ("sort", .document(MongoDocument(sort))),
            ("batchSize", 1000),
        ]
        if let limit { command.append(("limit", .json(.int(Int64(limit))))) }
        var reply = try await self.pool.command(MongoDocument(command))
        var documents = reply["cursor"]?["firstBatch"]?.arrayValue ?? []
        while let cursorID = reply["cursor"]?["id"]?.intValue, cursorID != 0 {
            reply = try await self.pool.command([("getMore", .json(.int(cursorID))), ("collection", .json(.string(collection)))])
            documents += reply["cursor"]?["nextBatch"]?.arrayValue ?? []
        }
        return documents
    }

    /// Deletes every matching document and answers how many went.
    private func delete(_ collection: String, _ filter: [(String, MongoValue)]) async throws -> Int64 {
        let reply = try await self.pool.command([
            ("delete", .json(.string(collection))),
            ("deletes", .array([.document([("q", .document(MongoDocument(filter))), ("limit", 0)])])),
        ])
        return reply["n"]?.intValue ?? 0
    }

    /// A document with `_id` = `id`, the fields of a JSON object (sorted; its own `id`, if
    /// any, left out), and one BSON date for a TTL index.
    private static func document(id: String, fields json: JSONValue, date: (name: String, value: Date)) -> MongoValue {
        var fields: [(String, MongoValue)] = [("_id", .json(.string(id)))]
        if case .object(let values) = json {
            for key in values.keys.sorted() where key != "id" { fields.append((key, .json(values[key]!))) }
        }
        fields.append((date.name, .date(Int64(date.value.timeIntervalSince1970 * 1000))))
        return .document(MongoDocument(fields))
    }

    private static func expiry(at date: Date, ttl: Double) -> Int64 {
        Int64((date.timeIntervalSince1970 + max(ttl * 10, 60)) * 1000)
    }

    private static func fields(of node: NodeRecord) -> [(String, MongoValue)] {
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

    private static func node(from document: JSONValue) -> NodeRecord {
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
