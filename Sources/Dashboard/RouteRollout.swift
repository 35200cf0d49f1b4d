public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
public import RegistryKit
public import RouteModel
public import SkyLib
public import TLS

/// Which revision of each route every router in the cluster serves, and why a router is not
/// serving what the registry holds: `sky routes status`, `sky routes push --wait`.
///
/// Routers are found in the registry (ready, not expired) and asked for `GET /routes` with a
/// short timeout, all at once. A router whose routes come from the registry is *in step* when it
/// serves every stored route at its stored revision and nothing else; one whose routes come from
/// a folder is in step when no file of it was refused. Either way a refused file is named with
/// its file and line, and a router that does not answer is named with its error.
public struct RouteRollout: Sendable {
    /// One router's routes as it answered them, or why it did not.
    public struct RouterState: Sendable {
        /// The router's node id and address, from the registry.
        public var nodeID: String
        /// Where its listener is.
        public var address: String
        /// `registry`, or the folder its routes come from; `nil` when it did not answer.
        public var source: String?
        /// The revision served, by route.
        public var revisions: [String: Int] = [:]
        /// Its refused route files.
        public var problems: [RouteProblem] = []
        /// Why it did not answer.
        public var unreachable: String?
        /// Routes it serves behind (or ahead of) the registry, or misses, as `route: reason`;
        /// empty when in step. Filled by ``compare(with:only:)``.
        public var lagging: [String] = []

        /// Whether it serves what it should: answered, nothing refused, nothing lagging.
        public var inStep: Bool { self.unreachable == nil && self.problems.isEmpty && self.lagging.isEmpty }

        /// A line for people: `in step`, or what is wrong, each reason once.
        public var state: String {
            if let unreachable { return "unreachable: \(unreachable)" }
            var reasons = self.lagging
            reasons += self.problems.map { problem in
                "refused \(problem.error)" + (problem.serving.map { " (serving revision \($0), the last good one)" } ?? "")
            }
            return reasons.isEmpty ? "in step" : reasons.joined(separator: "; ")
        }

        /// `{"node", "address", "source", "revisions", "problems", "unreachable", "lagging", "inStep", "state"}`.
        public var json: JSONValue {
            var fields: [String: JSONValue] = [
                "node": .string(self.nodeID), "address": .string(self.address),
                "revisions": .object(self.revisions.mapValues { .int(Int64($0)) }), "problems": .array(self.problems.map(\.json)),
                "lagging": .array(self.lagging.map(JSONValue.string)), "inStep": .bool(self.inStep), "state": .string(self.state),
            ]
            if let source { fields["source"] = .string(source) }
            if let unreachable { fields["unreachable"] = .string(unreachable) }
            return .object(fields)
        }

        /// Fills ``lagging`` for a router on the registry's routes: each stored route (or only
        /// those in `only`) must be served at its stored revision, and no other route served.
        /// A router on a folder is not compared: a push does not reach it.
        public mutating func compare(with stored: [StoredRoute], only: Set<String>? = nil) {
            self.lagging = []
            guard self.unreachable == nil, self.source == "registry" else { return }
            for route in stored where only?.contains(route.name) ?? true {
                switch self.revisions[route.name] {
                case nil: self.lagging.append("\(route.name): not served (registry has revision \(route.revision))")
                case let served? where served != route.revision:
                    self.lagging.append("\(route.name): revision \(served) served, registry has \(route.revision)")
                default: break
                }
            }
            let names = Set(stored.map(\.name))
            for name in self.revisions.keys.sorted() where !names.contains(name) && (only?.contains(name) ?? true) {
                self.lagging.append("\(name): still served, removed from the registry")
            }
        }
    }

    /// The client the routers are asked with.
    let client: HTTPClient
    /// The cluster's client TLS (its authority, a client certificate for mutual TLS), if any.
    let tls: NodeTLS?
    /// The bearer token the routers' endpoints require, if any.
    let token: String?
    /// How long one router may take to answer.
    let timeout: Duration

    /// Creates a `RouteRollout` from its parts.
    public init(client: HTTPClient, tls: NodeTLS?, token: String?, timeout: Duration = .seconds(2)) {
        self.client = client
        self.tls = tls
        self.token = token
        self.timeout = timeout
    }

    /// The routers `directory` lists as ready, sorted by address.
    public static func routers(in directory: any NodeDirectory) async throws -> [NodeRecord] {
        let now = Date()
        return try await directory.nodes().filter { $0.kind == .router && $0.isShownReady(at: now) }.sorted { $0.address < $1.address }
    }

    /// Asks every router in `routers` for its routes at once; the answers in the same order.
    public func states(of routers: [NodeRecord]) async -> [RouterState] {
        await withTaskGroup(of: (Int, RouterState).self) { group in
            for (index, router) in routers.enumerated() {
                group.addTask { (index, await self.state(of: router)) }
            }
            var states = [RouterState?](repeating: nil, count: routers.count)
            for await (index, state) in group { states[index] = state }
            return states.compactMap { $0 }
        }
    }

    /// One router's `GET /routes`, read into a state; a failure is the state's `unreachable`.
    func state(of router: NodeRecord) async -> RouterState {
        var state = RouterState(nodeID: router.id, address: router.address)
        do {
            var request = HTTPClientRequest(url: AdvertisedAddress.url(router.address, path: "/routes"))
            request.tlsConfiguration = self.tls?.client
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await self.client.execute(request, timeout: .nanoseconds(self.timeout.nanoseconds))
            let body = try await response.body.collect(upTo: 8 << 20)
            guard response.status == .ok else { throw SkyError(.badResponse, "GET /routes answered \(response.status.code)") }
            let json = try JSONParser.parse(Array(buffer: body))
            state.source = json["source"]?.stringValue ?? ""
            for route in json["routes"]?.arrayValue ?? [] {
                guard let name = route["name"]?.stringValue, let revision = route["revision"]?.intValue else { continue }
                state.revisions[name] = Int(revision)
            }
            state.problems = (json["problems"]?.arrayValue ?? []).compactMap(RouteProblem.init(json:))
        } catch {
            state.unreachable = "\(error)"
        }
        return state
    }
}
