import Foundation
import Synchronization
public import Logging
public import NIOPosix
public import ServiceLifecycle
public import SkyLib
public import RouteModel

/// Loads every route file (`*.yaml`, `*.yml`) of a folder into a ``RouteTable`` and keeps it
/// current: an edited file serves its new version within a poll interval, a broken edit is
/// logged with file:line and the last good version keeps serving, a deleted file removes its
/// route.
///
/// Polling a small folder's `stat`s is cheap, works on every file system (bind mounts, network
/// shares) and with every editor's way of saving (rename-over, truncate-and-write). File reads
/// run on NIO's blocking thread pool, never on an event loop or the cooperative pool.
public final class RouteDirectoryLoader: Service, Sendable {
    /// What the loader knows of one file, to tell changed files from unchanged ones.
    struct FileState: Sendable, Equatable {
        var signature: String
        var text: String
        var routeName: String?
    }

    /// The folder watched.
    public let directory: String
    /// The table kept current.
    public let table: RouteTable
    /// How often the folder is looked at.
    public let interval: Duration
    private let counters: Counters
    private let logger: Logger
    /// Where the folder is read (the node's pool: reads block).
    private let threadPool: NIOThreadPool
    private let files = Mutex<[String: FileState]>([:])

    /// Creates a `RouteDirectoryLoader` from its parts.
    /// - Parameter threadPool: where the folder is read (the node's pool).
    public init(directory: String, table: RouteTable, interval: Duration = .milliseconds(200), counters: Counters, threadPool: NIOThreadPool, logger: Logger) {
        self.threadPool = threadPool
        self.directory = directory
        self.table = table
        self.interval = interval
        self.counters = counters
        self.logger = logger
    }

    /// Outcome of one look at the folder.
    public struct Changes: Sendable {
        /// Routes (re)loaded, with their new revision.
        public var loaded: [RouteSummary] = []
        /// Files rejected, with why.
        public var rejected: [RouteFileError] = []
        /// Routes removed because their file went away.
        public var removed: [String] = []
    }

    /// Looks at the folder once and applies what changed.
    @discardableResult
    public func reload() async -> Changes {
        let directory = self.directory
        let known = self.files.withLock { $0 }
        let snapshot: [String: (signature: String, text: String?)]
        do {
            snapshot = try await self.threadPool.runIfActive {
                try Self.readChanged(directory: directory, known: known)
            }
        } catch {
            // Shutting down is not a problem with the folder.
            if !(error is CancellationError) && !Task.isCancelled {
                self.logger.error("cannot read routes folder", metadata: ["dir": "\(directory)", "error": "\(error)"])
            }
            return Changes()
        }
        return self.apply(snapshot)
    }

    /// Reloads every ``interval`` until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                await self.reload()
            }
        }
    }

    /// Stats every route file; reads only those whose signature changed.
    static func readChanged(directory: String, known: [String: FileState]) throws -> [String: (signature: String, text: String?)] {
        let manager = FileManager.default
        var result: [String: (signature: String, text: String?)] = [:]
        let names = try manager.contentsOfDirectory(atPath: directory)
        for name in names.sorted() where RouteFiles.isRouteFile(name) {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let attributes = try? manager.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular || attributes[.type] as? FileAttributeType == .typeSymbolicLink
            else { continue }
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            let signature = "\(modified)/\(size)/\(inode)"
            if known[path]?.signature == signature {
                result[path] = (signature, nil)
            } else {
                result[path] = (signature, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
            }
        }
        return result
    }

    private func apply(_ snapshot: [String: (signature: String, text: String?)]) -> Changes {
        var changes = Changes()
        let now = Date()
        self.files.withLock { files in
            // Files that went away take their route with them.
            for (path, state) in files where snapshot[path] == nil {
                files[path] = nil
                self.table.clearProblem(file: path)
                if let name = state.routeName, self.table.summary(named: name)?.file == path {
                    self.table.remove(named: name)
                    changes.removed.append(name)
                }
            }
            for path in snapshot.keys.sorted() {
                guard let entry = snapshot[path], let text = entry.text else { continue }
                let previous = files[path]
                if let previous, previous.text == text {
                    files[path]?.signature = entry.signature
                    continue
                }
                var state = FileState(signature: entry.signature, text: text, routeName: previous?.routeName)
                do throws(RouteFileError) {
                    let route = try RouteParser.parse(yaml: text, file: path)
                    if let owner = self.table.summary(named: route.name), owner.file != path, files[owner.file] != nil {
                        throw RouteFileError(
                            file: path,
                            line: 1,
                            reason: "duplicate route name '\(route.name)': already defined in \(owner.file)"
                        )
                    }
                    if let oldName = previous?.routeName, oldName != route.name, self.table.summary(named: oldName)?.file == path {
                        self.table.remove(named: oldName)
                        changes.removed.append(oldName)
                    }
                    changes.loaded.append(self.table.install(route, file: path, at: now))
                    self.table.clearProblem(file: path)
                    state.routeName = route.name
                } catch {
                    changes.rejected.append(error)
                    self.table.refuse(error, route: previous?.routeName, at: now)
                }
                files[path] = state
            }
        }
        for summary in changes.loaded {
            self.counters.add("routes-reloaded")
            self.logger.notice(
                "route loaded",
                metadata: [
                    "route": "\(summary.route.name)", "revision": "\(summary.revision)", "file": "\(summary.file)",
                    "steps": "\(summary.route.steps.map(\.outline).joined(separator: " → "))",
                ]
            )
        }
        for error in changes.rejected {
            self.counters.add("routes-reload-errors")
            let keeps = self.table.summaries.first { $0.file == error.file }
            self.logger.error(
                "route file rejected: \(error)",
                metadata: keeps.map { ["serving": "\($0.route.name) revision \($0.revision) (last good version)"] } ?? [:]
            )
        }
        for name in changes.removed {
            self.counters.add("routes-removed")
            self.logger.notice("route removed", metadata: ["route": "\(name)"])
        }
        return changes
    }
}
