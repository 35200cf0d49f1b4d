import Logging
import NIOPosix
import ServiceLifecycle
import SkyLib
import RouteModel

/// The life of one watched drop folder, shared by the file and CSV initiators: files left in
/// `.processing/` by an earlier stop are taken first, new complete files are queued as they
/// arrive, and a fixed number of workers handle them. On graceful shutdown no new file is
/// taken; files in hand are finished (or, for long CSV files, paused at a checkpoint).
///
/// Only regular files (or symlinks to them) are taken: a directory, FIFO, socket or device
/// with a matching name is refused with one log line, counted (`PREFIX-refused`), and left
/// where it is.
struct DropFolderLoop: Sendable {
    var dir: String
    var pattern: String
    var workers: Int
    var scanInterval: Duration
    var logger: Logger
    var counters: Counters
    /// Where the folder's blocking calls run (the node's pool).
    var threadPool: NIOThreadPool
    /// Counter names start with it (`files.ROUTE`, `csv.ROUTE`).
    var counterPrefix: String
    /// The route whose backlog (files done of files found) goes on the progress board while
    /// there is one; `nil`: none (CSV files have an entry each instead).
    var backlogRoute: String? = nil
    /// Whether files are handed out in order (an ordered source, `order:`): a worker takes the
    /// next file only once the previous one was handed off (``Handoff``), so the files' places in
    /// their keys' lanes follow the order the folder gave them.
    var ordered = false

    /// Runs until graceful shutdown or cancellation.
    /// - Parameter handle: handles one item: takes a fresh name with ``DropFolder/take(_:)``
    ///   (in the same trip to the thread pool as its other first steps), hands a name that is
    ///   not a file to `refusals`; `isStopping` tells long work to pause.
    func run(
        _ handle: @escaping @Sendable (_ item: DropItem, _ folder: DropFolder, _ refusals: Refusals, _ isStopping: @escaping @Sendable () -> Bool, _ handoff: Handoff) async -> Void
    ) async throws {
        let dir = self.dir
        let folder = try await self.threadPool.runIfActive { try DropFolder(path: dir) }
        let queue = WorkQueue<DropItem>()
        let leftovers = try await self.threadPool.runIfActive { try folder.leftovers() }
        if !leftovers.isEmpty {
            self.logger.notice("taking again \(leftovers.count) file(s) left in .processing/ by an earlier stop")
        }
        for stem in leftovers { queue.enqueue(.claimed(stem)) }
        let watcher = FolderWatcher(
            folder: folder, pattern: self.pattern, scanInterval: self.scanInterval, logger: self.logger, counters: self.counters,
            threadPool: self.threadPool, scanErrors: self.counterPrefix + "-scan-errors"
        )
        let stopping = Locked(false)
        let refusals = Refusals(logger: self.logger, counters: self.counters, counter: self.counterPrefix + "-refused")
        let isStopping: @Sendable () -> Bool = { stopping.withLock { $0 } || Task.isCancelled }
        let backlog = self.backlogRoute.map { Backlog(board: self.counters.progress, route: $0, folder: dir, queue: queue) }
        self.logger.info("watching for files", metadata: ["pattern": "\(self.pattern)"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    await watcher.run(into: queue, shouldStop: isStopping)
                    queue.finish()
                }
                let gate = KeyedLanes()
                for _ in 0..<max(1, self.workers) {
                    group.addTask {
                        while true {
                            // Ordered: one worker at a time takes a file, until it hands off.
                            let turn = self.ordered ? gate.reserve("") : nil
                            if let turn { await gate.wait(for: turn) }
                            let handoff = Handoff { if let turn { gate.leave(turn) } }
                            guard let item = await queue.next() else {
                                handoff()
                                break
                            }
                            backlog?.started()
                            await handle(item, folder, refusals, isStopping, handoff)
                            handoff()
                            queue.done(item)
                            backlog?.finished()
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            stopping.withLock { $0 = true }
            queue.finish()
        }
    }
}

/// Lets the next worker of an ordered drop folder take a file: called once the file has its
/// place in its key's lane (or will not get one). Calling it again does nothing.
struct Handoff: Sendable {
    private let done = Locked(false)
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func callAsFunction() {
        guard self.done.withLock({ done in defer { done = true }; return !done }) else { return }
        self.body()
    }
}

/// Names in a drop folder that are not regular files (a directory, FIFO, socket or device with
/// a matching name): each is logged and counted once while it stays, and left where it is.
struct Refusals: Sendable {
    let logger: Logger
    let counters: Counters
    /// Counter bumped once per refused name, e.g. `files.ROUTE-refused`.
    let counter: String
    private let refused = Locked(Set<String>())

    init(logger: Logger, counters: Counters, counter: String) {
        self.logger = logger
        self.counters = counters
        self.counter = counter
    }

    /// What ``DropFolder/take(_:)`` came to for `name`: the claimed stem (and whether it is a
    /// symlink out of the folder), or `nil` when there is nothing to do (gone, or refused here).
    func claimed(_ name: String, _ take: DropFolder.Take) -> (stem: String, escapes: Bool)? {
        guard case .notAFile(let what) = take else {
            // Taken or gone: refused again later, it is logged again.
            _ = self.refused.withLock { $0.remove(name) }
            guard case .claimed(let stem, let escapes) = take else { return nil }
            return (stem, escapes)
        }
        if self.refused.withLock({ $0.insert(name).inserted }) {
            self.counters.add(self.counter)
            self.logger.warning("refused: \(what), not a file; left where it is", metadata: ["file": "\(name)"])
        }
        return nil
    }
}
