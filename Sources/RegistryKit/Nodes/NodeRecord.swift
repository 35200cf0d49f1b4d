public import Foundation
public import SkyLib

/// What kind of process a node is.
public enum NodeKind: String, Sendable, Hashable, CaseIterable, Codable {
    case service, router, initiator, reaper, daemon
    /// `sky dns`.
    case dns
}

/// Where a node is in its life: it takes work only when `ready`.
public enum NodeStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case starting, ready, draining
    /// Up and heartbeating, but taken out of rotation by `sky unregister` until `sky register`.
    case unregistered
}

/// One process in the registry: who it is, where to reach it, and when it last said it was alive.
public struct NodeRecord: Sendable, Hashable {
    /// Unique id (UUID), new for every start of a process.
    public var id: String
    /// What the process is: a service, router, initiator, reaper, daemon …
    public var kind: NodeKind
    /// The service it hosts (for kind `service`), or the role name.
    public var service: String
    /// The service's version (semantic), which routes may select on.
    public var version: String
    /// Where it runs; routers prefer instances in their own region.
    public var region: String
    /// The deployment it belongs to (`production`, `staging` …): a label in its DNS names
    /// (`SERVICE.ENVIRONMENT.DOMAIN`, see `sky dns`).
    public var environment: String
    /// Host name of the machine.
    public var host: String
    /// `HOST:PORT` where its HTTP endpoints answer.
    public var address: String
    /// Process id on its host.
    public var pid: Int32
    /// When the process started.
    public var startedAt: Date
    /// Its last heartbeat.
    public var heartbeatAt: Date
    /// `starting`, `ready`, `draining` or `unregistered`; routers call only `ready` nodes.
    public var status: NodeStatus
    /// Seconds without a heartbeat after which the node counts as dead.
    public var ttl: Double
    /// Live statistics, as numbers.
    public var stats: [String: Int64]

    /// Creates a `NodeRecord` from its parts.
    public init(
        id: String = Identifiers.nodeID(),
        kind: NodeKind,
        service: String,
        version: String = "1.0.0",
        region: String = "local",
        environment: String = NodeRecord.defaultEnvironment,
        host: String = ProcessInfo.processInfo.hostName,
        address: String,
        pid: Int32 = ProcessInfo.processInfo.processIdentifier,
        startedAt: Date = Date(),
        heartbeatAt: Date = Date(),
        status: NodeStatus = .starting,
        ttl: Double = 3,
        stats: [String: Int64] = [:]
    ) {
        self.id = id
        self.kind = kind
        self.service = service
        self.version = version
        self.region = region
        self.environment = environment
        self.host = host
        self.address = address
        self.pid = pid
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.status = status
        self.ttl = ttl
        self.stats = stats
    }

    /// The environment of a node that names none: `production`.
    public static let defaultEnvironment = "production"

    /// Whether the last heartbeat is older than the TTL at `now`.
    public func isExpired(at now: Date = Date()) -> Bool {
        now.timeIntervalSince(self.heartbeatAt) > self.ttl
    }

    /// The status to show people at `now`: `expired` once the last heartbeat is older than the
    /// TTL (routers no longer send it work and a reaper will remove it), else the recorded
    /// status. Tools show this, so a killed node never looks `ready` while it waits for a reaper.
    public func shownStatus(at now: Date = Date()) -> String {
        self.isExpired(at: now) ? "expired" : self.status.rawValue
    }

    /// Whether tools count it as ready at `now`: recorded `ready` and not expired.
    public func isShownReady(at now: Date = Date()) -> Bool {
        self.status == .ready && !self.isExpired(at: now)
    }
}

extension NodeRecord {
    /// The record as tools show it at `now`: ``json`` with `status` as ``shownStatus(at:)``
    /// (`expired` past the TTL) and the recorded one as `recordedStatus`.
    public func shownJSON(at now: Date = Date()) -> JSONValue {
        guard case .object(var fields) = self.json else { return self.json }
        fields["status"] = .string(self.shownStatus(at: now))
        fields["recordedStatus"] = .string(self.status.rawValue)
        return .object(fields)
    }

    /// The record as JSON, for `--json` output and the dashboard.
    public var json: JSONValue {
        [
            "id": .string(self.id), "kind": .string(self.kind.rawValue), "service": .string(self.service),
            "version": .string(self.version), "region": .string(self.region), "environment": .string(self.environment), "host": .string(self.host),
            "address": .string(self.address), "pid": .int(Int64(self.pid)),
            "startedAt": .double(self.startedAt.timeIntervalSince1970),
            "heartbeatAt": .double(self.heartbeatAt.timeIntervalSince1970),
            "status": .string(self.status.rawValue), "ttl": .double(self.ttl),
            "stats": .object(self.stats.mapValues { .int($0) }),
        ]
    }
}

/// Something that happened in the cluster, kept in the registry: registered, deregistered, reaped …
public struct RegistryEvent: Sendable, Hashable {
    /// When it happened.
    public var at: Date
    /// `registered`, `deregistered`, `reaped`, `reaper-restrained`, …
    public var kind: String
    /// The node it concerns.
    public var nodeID: String
    /// That node's service (or role name).
    public var service: String
    /// Who did it and why, for a person.
    public var message: String

    /// Creates a `RegistryEvent` from its parts.
    public init(at: Date = Date(), kind: String, nodeID: String, service: String, message: String) {
        self.at = at
        self.kind = kind
        self.nodeID = nodeID
        self.service = service
        self.message = message
    }
}
