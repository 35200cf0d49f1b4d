import Foundation
public import Logging
import ServiceLifecycle
public import SkyLib
import RouteModel
import Synchronization
public import RegistryKit

/// Serves the routes pushed to the registry (`sky routes push DIR`): a router started with
/// `--routes registry` applies a pushed change within a poll interval, as does every other
/// router on the same registry.
///
/// Pushes are validated before they are stored, so a stored route that does not parse means
/// another version of `sky` pushed it: it is logged once and the last good version keeps
/// serving.
public final class RouteRegistryLoader: RouteLoading, Sendable {
    /// Where pushed routes are read: the registry's route store, the only role it calls.
    public let store: any RouteStore
    /// The table kept in step with them.
    public let table: RouteTable
    /// How often the registry is read for changes.
    public let interval: Duration
    private let counters: Counters
    private let logger: Logger
    /// Revisions applied (or rejected), by route name.
    private let seen = Mutex<[String: Int]>([:])
    private let failing = Mutex(false)

    /// Creates a loader for `table`; ``reloadNow()`` or ``run()`` fill it.
    public init(store: any RouteStore, table: RouteTable, interval: Duration = .milliseconds(250), counters: Counters, logger: Logger) {
        self.store = store
        self.table = table
        self.interval = interval
        self.counters = counters
        self.logger = logger
    }

    public func reloadNow() async {
        let stored: [StoredRoute]
        do {
            stored = try await self.store.storedRoutes()
            if self.failing.withLock({ $0 }) { self.logger.notice("routes readable from the registry again") }
            self.failing.withLock { $0 = false }
        } catch {
            // Keep serving what we have; say so once.
            if !self.failing.withLock({ $0 }) {
                self.logger.error("cannot read routes from the registry; serving the last ones read", metadata: ["error": "\(error)"])
            }
            self.failing.withLock { $0 = true }
            return
        }
        let present = Set(stored.map(\.name))
        let seen = self.seen.withLock { $0 }
        for name in seen.keys where !present.contains(name) {
            self.table.remove(named: name)
            self.table.clearProblems(route: name)
            _ = self.seen.withLock { $0.removeValue(forKey: name) }
            self.counters.add("routes-removed")
            self.logger.notice("route removed from the registry", metadata: ["route": "\(name)"])
        }
        for route in stored where seen[route.name] != route.revision {
            self.seen.withLock { $0[route.name] = route.revision }
            do {
                let parsed = try RouteParser.parse(yaml: route.yaml, file: "registry:\(route.file)")
                guard parsed.name == route.name else {
                    throw RouteFileError(file: "registry:\(route.file)", line: 1, reason: "stored as '\(route.name)' but named '\(parsed.name)'")
                }
                let summary = self.table.install(parsed, file: "registry:\(route.file)", revision: route.revision, at: route.updatedAt)
                self.table.clearProblems(route: route.name)
                self.counters.add("routes-reloaded")
                self.logger.notice("route loaded", metadata: ["route": "\(route.name)", "revision": "\(summary.revision)", "file": "\(summary.file)"])
            } catch {
                self.counters.add("routes-reload-errors")
                let refused = (error as? RouteFileError) ?? RouteFileError(file: "registry:\(route.file)", line: nil, reason: "\(error)")
                // Keyed by the route: a later revision refused replaces this one's problem.
                self.table.clearProblems(route: route.name)
                let problem = self.table.refuse(refused, route: route.name)
                self.logger.error(
                    "stored route rejected: \(refused)",
                    metadata: ["revision": "\(route.revision)", "serving": "\(problem.serving.map { "revision \($0) (last good version)" } ?? "nothing")"]
                )
            }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                await self.reloadNow()
            }
        }
    }
}
