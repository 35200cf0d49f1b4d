import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import SkyLib
public import RegistryKit

/// Asks a node whether it is alive. The seam lets tests stage dead nodes; the real probe is
/// ``HTTPHealthProbe``.
public protocol HealthProbe: Sendable {
    /// Whether `node` answered at all (any HTTP status counts: a draining node answers 503
    /// and is alive; only silence, refusal or a timeout is a failed probe).
    func isAlive(_ node: NodeRecord) async -> Bool
}

/// Probes `GET http://ADDRESS/health` with a short timeout.
public struct HTTPHealthProbe: HealthProbe {
    /// How long one probe may take.
    public var timeout: TimeAmount

    /// Creates a `HTTPHealthProbe` from its parts.
    public init(timeout: TimeAmount = .seconds(1)) {
        self.timeout = timeout
    }

    public func isAlive(_ node: NodeRecord) async -> Bool {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(node.address)/health"), timeout: self.timeout)
            _ = try await response.body.collect(upTo: 64 * 1024)
            return true
        } catch {
            return false
        }
    }
}
