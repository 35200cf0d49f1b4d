public import AdminHTTP
import Foundation
public import Hummingbird
public import RegistryKit
import SkyLib
import RouteModel

/// Registration over HTTP: a service in any language joins with one call, no registry driver
/// needed. Served by routers and `sky run`, under the same token as their other endpoints.
///
/// | Request | Answer |
/// |---|---|
/// | `PUT /v1/nodes/ID` with `{service, address, ttl, version?, region?, environment?, status?}` | 201 and the record the first time, 200 after (a heartbeat is the same PUT again) |
/// | `GET /v1/nodes/ID` | 200 and the record, 404 when unknown |
/// | `DELETE /v1/nodes/ID` | 204, 404 when unknown |
///
/// A node registered this way carries `registeredOverHTTP: 1` in its stats; a PUT or DELETE
/// for the id of a node that registered itself (a router, a `sky service`) is a 409, so a
/// stray call cannot take over or remove a process's own record. The reaper treats these
/// nodes like any other: no PUT within the TTL and the node is reaped.
public struct RegistrationEndpoints: EndpointGroup {
    /// The registry written: its node records, and its event log for what happened.
    public let registry: any NodeDirectory & EventLog
    /// Largest body accepted.
    public static let maxBodyBytes = 16 * 1024
    /// The stat that marks a node registered over HTTP.
    public static let marker = "registeredOverHTTP"

    /// Creates `RegistrationEndpoints` writing to `registry`.
    public init(registry: any NodeDirectory & EventLog) {
        self.registry = registry
    }

    public func add<Context: RequestContext>(to router: Router<Context>, recording table: EndpointTable?) {
        table?.record(.put, "v1/nodes/:id")
        table?.record(.get, "v1/nodes/:id")
        table?.record(.delete, "v1/nodes/:id")
        router.put("v1/nodes/:id") { request, context -> Response in
            var request = request
            do {
                let id = try Self.nodeID(context.parameters.get("id"))
                let body = try await request.jsonBody(limit: Self.maxBodyBytes)
                return try await self.put(id: id, body: body)
            } catch {
                return Self.failure(error)
            }
        }
        router.get("v1/nodes/:id") { _, context -> Response in
            do {
                let id = try Self.nodeID(context.parameters.get("id"))
                guard let node = try await self.node(id) else { throw SkyError(.notFound, "no node '\(id)' in the registry") }
                return .json(node.shownJSON())
            } catch {
                return Self.failure(error)
            }
        }
        router.delete("v1/nodes/:id") { _, context -> Response in
            do {
                let id = try Self.nodeID(context.parameters.get("id"))
                guard let node = try await self.node(id) else { throw SkyError(.notFound, "no node '\(id)' in the registry") }
                try Self.ownedOverHTTP(node)
                try await self.registry.deregister(nodeID: id)
                try? await self.registry.record(RegistryEvent(kind: "deregistered", nodeID: id, service: node.service, message: "deregistered over HTTP (DELETE /v1/nodes/\(id))"))
                return Response(status: .noContent)
            } catch {
                return Self.failure(error)
            }
        }
    }

    public func describe(in document: inout OpenAPIDocument) {
        let id: JSONValue = [
            "name": "id", "in": "path", "required": true, "description": "The node's id: 1 to 128 letters, digits, '.', '_' or '-'.",
            "schema": ["type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"],
        ]
        let node = OpenAPIDocument.schema("Node")
        let body: JSONValue = [
            "type": "object", "required": ["service", "address", "ttl"], "additionalProperties": false,
            "properties": [
                "service": ["type": "string", "pattern": "^[A-Za-z0-9._-]+$"],
                "address": ["type": "string", "description": "HOST:PORT or https://HOST:PORT where /call answers; not 0.0.0.0."],
                "ttl": ["type": "number", "minimum": 1, "maximum": 86400, "description": "Seconds without a PUT before the node counts as dead."],
                "version": ["type": "string", "description": "Dotted version, e.g. 1.2.0."], "region": ["type": "string"],
                "environment": ["type": "string", "description": "One DNS label."], "status": ["type": "string", "enum": ["ready", "draining"]],
            ],
        ]
        let unavailable = OpenAPIDocument.error("The registry failed.")
        document.add("put", "/v1/nodes/{id}", [
            "summary": "Register a service instance, or heartbeat it (the same PUT again)", "operationId": "putNode", "tags": ["registration"],
            "parameters": [id],
            "requestBody": ["required": true, "content": ["application/json": ["schema": body]]],
            "responses": [
                "201": OpenAPIDocument.json("Registered.", schema: node), "200": OpenAPIDocument.json("Heartbeat recorded.", schema: node),
                "400": OpenAPIDocument.error("A field is missing or wrong (the message names it), or the body is not JSON."),
                "409": OpenAPIDocument.error("The id belongs to a node that registered itself."),
                "413": OpenAPIDocument.error("The body is over 16 KiB."), "503": unavailable,
            ],
        ])
        document.add("get", "/v1/nodes/{id}", [
            "summary": "A node's record", "operationId": "getNode", "tags": ["registration"], "parameters": [id],
            "responses": [
                "200": OpenAPIDocument.json("The record.", schema: node), "400": OpenAPIDocument.error("The id is not a valid id."),
                "404": OpenAPIDocument.error("No such node."), "503": unavailable,
            ],
        ])
        document.add("delete", "/v1/nodes/{id}", [
            "summary": "Deregister a node registered over HTTP", "operationId": "deleteNode", "tags": ["registration"], "parameters": [id],
            "responses": [
                "204": ["description": "Deregistered."], "400": OpenAPIDocument.error("The id is not a valid id."),
                "404": OpenAPIDocument.error("No such node."), "409": OpenAPIDocument.error("The node registered itself."), "503": unavailable,
            ],
        ])
    }

    /// The error's JSON answer; a failure that is not ours is the registry's.
    private static func failure(_ error: any Error) -> Response {
        .error(error as? SkyError ?? SkyError(.registry, "the registry failed: \(error)"))
    }

    func put(id: String, body: JSONValue) async throws(SkyError) -> Response {
        var node = try Self.record(id: id, body: body)
        let existing: NodeRecord?
        do {
            existing = try await self.node(id)
            if let existing {
                try Self.ownedOverHTTP(existing)
                node.startedAt = existing.startedAt
            }
            try await self.registry.register(node)
            if existing == nil {
                try? await self.registry.record(RegistryEvent(kind: "registered", nodeID: id, service: node.service, message: "registered over HTTP at \(node.address)"))
            }
        } catch let error as SkyError {
            throw error
        } catch {
            throw SkyError(.registry, "cannot register node '\(id)': \(error)")
        }
        return .json(node.shownJSON(), status: existing == nil ? .created : .ok)
    }

    private func node(_ id: String) async throws(SkyError) -> NodeRecord? {
        do {
            return try await self.registry.nodes().first { $0.id == id }
        } catch {
            throw SkyError(.registry, "cannot read the registry: \(error)")
        }
    }

    private static func ownedOverHTTP(_ node: NodeRecord) throws(SkyError) {
        guard node.stats[Self.marker] == 1 else {
            throw SkyError(.conflict, "node '\(node.id)' is \(node.kind.rawValue) \(node.service) at \(node.address), which registered itself; only nodes registered over HTTP can be changed here")
        }
    }

    /// The id from the path: 1 to 128 letters, digits, '.', '_' or '-'.
    static func nodeID(_ text: String?) throws(SkyError) -> String {
        let id = text ?? ""
        let allowed = id.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard (1...128).contains(id.utf8.count), allowed else {
            throw SkyError(.badRequest, "node id in the path must be 1 to 128 letters, digits, '.', '_' or '-'")
        }
        return id
    }

    /// The record a body describes; a wrong field is a 400 that names it.
    static func record(id: String, body: JSONValue) throws(SkyError) -> NodeRecord {
        guard case .object(let fields) = body else { throw SkyError(.badRequest, "the body must be a JSON object with service, address and ttl") }
        let known: Set<String> = ["service", "version", "region", "environment", "address", "ttl", "status"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw SkyError(.badRequest, "field '\(unknown)' is not known (fields: \(known.sorted().joined(separator: ", ")))")
        }
        func text(_ name: String, default value: String? = nil) throws(SkyError) -> String {
            switch fields[name] {
            case .string(let text)?: return text
            case nil where value != nil: return value!
            case nil: throw SkyError(.badRequest, "field '\(name)' is missing")
            default: throw SkyError(.badRequest, "field '\(name)' must be a string")
            }
        }
        let service = try text("service")
        guard RouteParser.isValidName(service) else { throw SkyError(.badRequest, "field 'service' may only use letters, digits, '-', '_' and '.', got '\(service)'") }
        let version = try text("version", default: "1.0.0")
        guard VersionSelector(version) != nil, !version.contains("*") else { throw SkyError(.badRequest, "field 'version' must be a dotted version like 1.2.0, got '\(version)'") }
        let region = try text("region", default: "local")
        guard !region.isEmpty, region.utf8.count <= 63 else { throw SkyError(.badRequest, "field 'region' must be 1 to 63 characters") }
        let environment = try text("environment", default: NodeRecord.defaultEnvironment)
        guard DNSLabel.isValid(environment) else { throw SkyError(.badRequest, "field 'environment' must be one DNS label (letters, digits, '-'), got '\(environment)'") }
        let address = try text("address")
        // `https://HOST:PORT` for a service serving TLS; the rest is checked without the scheme.
        let hostPort = AdvertisedAddress.hostPort(address)
        guard !address.hasPrefix("http://"), let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(port),
              !hostPort[..<colon].isEmpty, !["0.0.0.0", "::", "[::]"].contains(String(hostPort[..<colon]))
        else {
            throw SkyError(.badRequest, "field 'address' must be HOST:PORT (or https://HOST:PORT) with a host others can reach and a port 1 to 65535, got '\(address)'")
        }
        guard let ttl = fields["ttl"]?.doubleValue else {
            throw SkyError(.badRequest, fields["ttl"] == nil ? "field 'ttl' is missing" : "field 'ttl' must be a number of seconds")
        }
        guard ttl >= 1, ttl <= 86_400 else { throw SkyError(.badRequest, "field 'ttl' must be 1 to 86400 seconds, got \(ttl)") }
        let status = try text("status", default: "ready")
        guard let recorded = NodeStatus(rawValue: status), recorded == .ready || recorded == .draining else {
            throw SkyError(.badRequest, "field 'status' must be ready or draining, got '\(status)'")
        }
        let host = String(hostPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return NodeRecord(
            id: id, kind: .service, service: service, version: version, region: region, environment: environment, host: host, address: address,
            pid: 0, status: recorded, ttl: ttl, stats: [Self.marker: 1]
        )
    }
}
