public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import SkyLib
public import RegistryKit
public import TLS

/// Asks a node whether it is alive. The seam lets tests stage dead nodes; the real probe is
/// ``HTTPHealthProbe``.
public protocol HealthProbe: Sendable {
    /// Whether `node` answered at all (any HTTP status counts: a draining node answers 503
    /// and is alive; only silence, refusal or a timeout is a failed probe).
    func isAlive(_ node: NodeRecord) async -> Bool
}

/// Probes `GET http://ADDRESS/health` (`https://` for a node whose address says so, with
/// the process's TLS) with a short timeout.
public struct HTTPHealthProbe: HealthProbe {
    /// How long one probe may take.
    public var timeout: TimeAmount
    /// The process's TLS, for nodes that serve it.
    public var tls: NodeTLS?
    /// The client probes go through (the node's).
    public let client: HTTPClient

    /// Creates a `HTTPHealthProbe` from its parts.
    public init(client: HTTPClient, timeout: TimeAmount = .seconds(1), tls: NodeTLS? = nil) {
        self.client = client
        self.timeout = timeout
        self.tls = tls
    }

    public func isAlive(_ node: NodeRecord) async -> Bool {
        do {
            var request = HTTPClientRequest(url: AdvertisedAddress.url(node.address, path: "/health"))
            request.tlsConfiguration = self.tls?.client
            let response = try await self.client.execute(request, timeout: self.timeout)
            _ = try await response.body.collect(upTo: 64 * 1024)
            return true
        } catch {
            return false
        }
    }
}
