public import Foundation
public import Logging
public import ServiceLifecycle
public import SkyLib

/// Removes nodes that died: a node whose heartbeat is older than its TTL is deleted from the
/// registry and an event records who, why and when.
///
/// Self-preservation: when one pass would remove more than half of the live nodes, the reaper
/// assumes that it, not they, is cut off (a registry hiccup, a paused VM), removes nothing,
/// and says so loudly. Eureka does the same, but waits minutes; this reaper acts every pass.
public final class Reaper: Service, Sendable {
    /// How the reaper works.
    public struct Configuration: Sendable {
        /// How often the registry is scanned.
        public var interval: Duration = .milliseconds(500)
        /// Most of the live nodes one pass may remove before self-preservation stops it.
        public var maxFraction: Double = 0.5
        public init() {}
    }

    public let registry: any Registry
    public let configuration: Configuration
    private let counters: Counters
    private let logger: Logger

    public init(registry: any Registry, configuration: Configuration = Configuration(), counters: Counters, logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
    }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        /// Nodes removed.
        public var reaped: [String] = []
        /// Whether self-preservation held the pass back.
        public var restrained = false
    }

    /// Scans once and removes expired nodes.
    @discardableResult
    public func reapOnce(now: Date = Date()) async throws -> Pass {
        let nodes = try await self.registry.nodes()
        let expired = nodes.filter { $0.isExpired(at: now) }
        var pass = Pass()
        guard !expired.isEmpty else { return pass }
        // A lone node dying is normal; many at once more likely means we are the ones cut off.
        if nodes.count > 2, Double(expired.count) > Double(nodes.count) * self.configuration.maxFraction {
            pass.restrained = true
            self.counters.add("reaper-restrained")
            self.logger.critical(
                "self-preservation: \(expired.count) of \(nodes.count) nodes look dead at once; assuming this reaper or the registry is cut off, removing none"
            )
            return pass
        }
        for node in expired {
            let age = now.timeIntervalSince(node.heartbeatAt)
            guard try await self.registry.reap(nodeID: node.id, heartbeatBefore: now.addingTimeInterval(-node.ttl)) else { continue }
            let message = String(format: "no heartbeat for %.1fs (ttl %.1fs); last seen at %@, pid %d on %@", age, node.ttl, node.address, node.pid, node.host)
            try? await self.registry.record(RegistryEvent(at: now, kind: "reaped", nodeID: node.id, service: node.service, message: message))
            self.counters.add("reaper-reaped")
            self.logger.notice("reaped node", metadata: ["node": "\(node.id)", "service": "\(node.service)", "why": "\(message)"])
            pass.reaped.append(node.id)
        }
        return pass
    }

    /// Scans every ``Configuration/interval`` until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    try await self.reapOnce()
                    if failing { self.logger.notice("reaper reaches the registry again") }
                    failing = false
                } catch {
                    if !failing { self.logger.error("reaper cannot read the registry; will retry", metadata: ["error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: self.configuration.interval)
            }
        }
    }
}
