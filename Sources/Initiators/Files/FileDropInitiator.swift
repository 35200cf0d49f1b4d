import Foundation
public import Logging
public import NIOPosix
import ServiceLifecycle
public import SkyLib
public import RouteModel

/// The file initiator: every complete file dropped into a folder becomes one route request.
///
/// A file is claimed by an atomic rename into `DIR/.processing/`, so two engines on one folder
/// never both take it. On success the route's answer is written to `DIR/.out/NAME.json` and the
/// input moved to `DIR/.done/` once the answer is on disk (answers are synced in groups by one
/// committer, one `syncfs` for all those written since the last: ``CommitQueue``); on final
/// failure the input goes to `DIR/.failed/` beside
/// `NAME.error.json` (route, step, service, reason, attempts). Files left in `.processing/` by
/// a crash are taken again at start, so delivery is at-least-once. JSON files become the
/// payload; with `format: text` or `base64` the content is a string. `meta` carries the file's
/// name, size and path.
public final class FileDropInitiator: Initiator, Sendable {
    /// How one folder is handled.
    public struct Configuration: Sendable {
        /// The route each file runs.
        public var route: String
        /// The route's `files:` source.
        public var source: FileSource
        /// Largest file taken; larger ones are parked in `.failed/`.
        public var maxFileBytes: Int = 16 * 1024 * 1024
        /// How often the folder is rescanned as a fallback to inotify.
        public var scanInterval: Duration = .seconds(1)
        /// Most answers written and not yet synced; a worker past it waits for the disk.
        public var commitWindow = 1024
        /// How a group of answers is made durable before their inputs move (blocking; tests
        /// stand in a slow or failing one).
        var sync: @Sendable (DropFolder) throws(DropFolderError) -> Void = { folder throws(DropFolderError) in try folder.syncFileSystem() }

        /// Creates a `Configuration` from its parts.
        public init(route: String, source: FileSource) {
            self.route = route
            self.source = source
        }
    }

    /// What this initiator was made with.
    public let configuration: Configuration
    private let runner: any RouteRunner
    private let counters: Counters
    private let logger: Logger
    /// Where the folder's blocking calls run.
    let threadPool: NIOThreadPool
    /// Where failed files are reported (`sky failed`), beside `.failed/`.
    let failures: any FailedInputs

    /// Creates a `FileDropInitiator` from its parts.
    /// - Parameters:
    ///   - threadPool: where the folder's blocking calls run (reads, renames, fsync): the node's
    ///     pool, never an event loop.
    ///   - failures: where failed files are reported, so `sky failed` lists and redrives them.
    public init(
        configuration: Configuration, runner: any RouteRunner, counters: Counters, threadPool: NIOThreadPool, failures: any FailedInputs = NoFailedInputs(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.failures = failures
        self.threadPool = threadPool
        self.runner = runner
        self.counters = counters
        var logger = logger
        logger[metadataKey: "initiator"] = "files"
        logger[metadataKey: "dir"] = "\(configuration.source.dir)"
        self.logger = logger
    }

    public var summary: String { "files \(self.configuration.source.dir)/\(self.configuration.source.pattern) → route \(self.configuration.route)" }

    private var counterPrefix: String { "files.\(self.configuration.route)" }

    /// An input whose answer is written, waiting for the sync that lets it move to `.done/`.
    struct WrittenAnswer: Sendable {
        var stem: String
        var folder: DropFolder
    }

    public func run() async throws {
        let source = self.configuration.source
        var loop = DropFolderLoop(
            dir: source.dir, pattern: source.pattern, workers: source.concurrency, scanInterval: self.configuration.scanInterval, logger: self.logger,
            counters: self.counters, threadPool: self.threadPool, counterPrefix: self.counterPrefix, backlogRoute: self.configuration.route
        )
        loop.ordered = source.order != nil
        let lanes = KeyedLanes()
        let commits = CommitQueue<WrittenAnswer>(limit: self.configuration.commitWindow)
        // The committer outlives the workers: on shutdown the answers they wrote are synced
        // and their inputs moved before `run` returns.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.commit(commits) }
            do {
                try await loop.run { item, folder, refusals, isStopping, handoff in
                    await self.handle(item, in: folder, refusals: refusals, commits: commits, lane: (lanes, handoff, isStopping))
                }
            } catch {
                commits.finish()
                throw error
            }
            commits.finish()
            try await group.waitForAll()
        }
    }

    /// The committer: one sync for every answer written since the last, then their inputs
    /// move to `.done/`. A failing sync is retried with back-off (the inputs stay in
    /// `.processing/`, the workers go on until the window is full); at shutdown it is tried
    /// once more and the inputs left for the next start.
    private func commit(_ commits: CommitQueue<WrittenAnswer>) async {
        // Its own thread: a sync holds a thread for a disk round trip, and on the shared pool
        // (one thread per core) that thread would be missing from the workers' reads and
        // writes for as long.
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        defer { thread.shutdownGracefully { _ in } }
        let sync = self.configuration.sync
        let syncing = BackoffRetry(logger: self.logger, counters: self.counters, threadPool: self.threadPool, counter: "\(self.counterPrefix)-sync-errors")
        while let group = await commits.nextGroup() {
            defer { commits.committed(group.count) }
            // One initiator watches one folder: every answer of a group is in it.
            guard let folder = group.first?.folder else { continue }
            let synced = await syncing.run(
                "cannot sync the answers to disk; their inputs stay in .processing/ until they are", file: group.count == 1 ? group[0].stem : "\(group[0].stem) and \(group.count - 1) more",
                shouldStop: { commits.isFinished }, waiting: { try await thread.runIfActive { try sync(folder) } }
            )
            guard synced else { continue }  // stopped: taken again at the next start
            // Every move in one trip; one that fails is retried on its own.
            let unmoved = (try? await thread.runIfActive { group.filter { (try? folder.move($0.stem, to: folder.done)) == nil } }) ?? group
            for answer in unmoved { await self.finish(answer.stem, to: folder.done, in: folder) }
            self.counters.add("\(self.counterPrefix)-done", Int64(group.count))
        }
    }

    /// What an ordered source's file needs to take its place: the lanes, the handoff that lets
    /// the next file be taken once it has, and whether the source is stopping.
    typealias LaneContext = (lanes: KeyedLanes, handoff: Handoff, isStopping: @Sendable () -> Bool)

    private func handle(_ item: DropItem, in folder: DropFolder, refusals: Refusals, commits: CommitQueue<WrittenAnswer>, lane: LaneContext) async {
        let limit = self.configuration.maxFileBytes
        let stem: String
        let contents: Result<Data, DropFolderError>
        switch item {
        case .claimed(let claimed):
            stem = claimed
            do {
                contents = .success(try await self.threadPool.runIfActive { try folder.read(claimed, limit: limit) })
            } catch {
                // Cancelled by a stop past the drain limit: it stays in .processing/.
                if Task.isCancelled { return }
                contents = .failure(error as? DropFolderError ?? DropFolderError(path: folder.processing + "/" + claimed, reason: "\(error)"))
            }
        case .fresh(let name):
            let taken: (DropFolder.Take, Result<Data, DropFolderError>)
            do {
                // One trip to the thread pool to check, claim and read the file: a file costs
                // a few of them, and each is a wake-up and a context switch.
                taken = try await self.threadPool.runIfActive { () throws -> (DropFolder.Take, Result<Data, DropFolderError>) in
                    let take = try folder.take(name)
                    guard case .claimed(let stem, escapes: false) = take else { return (take, .success(Data())) }
                    do throws(DropFolderError) {
                        return (take, .success(try folder.read(stem, limit: limit)))
                    } catch {
                        return (take, .failure(error))
                    }
                }
            } catch {
                // A stop past the drain limit cancels the take: no error, the file is taken
                // at the next start.
                if Task.isCancelled { return }
                self.counters.add("\(self.counterPrefix)-claim-errors")
                self.logger.error("cannot take file", metadata: ["file": "\(name)", "error": "\(error)"])
                return
            }
            guard let (claimed, escapes) = refusals.claimed(name, taken.0) else { return }  // gone or refused
            stem = claimed
            if escapes {
                await self.park(stem, in: folder, error: SkyError(.badRequest, "refused: symlink to a file outside \(folder.root)"), code: "refused", attempts: 0, input: nil)
                return
            }
            contents = taken.1
        }
        await self.process(stem, contents: contents, in: folder, commits: commits, lane: lane)
    }

    private func process(_ stem: String, contents: Result<Data, DropFolderError>, in folder: DropFolder, commits: CommitQueue<WrittenAnswer>, lane: LaneContext) async {
        let data: Data
        switch contents {
        case .success(let read):
            data = read
        case .failure(let error):
            await self.park(stem, in: folder, error: SkyError(.badRequest, "unreadable: \(error)"), code: "unreadable", attempts: 0, input: nil)
            return
        }
        let payload: JSONValue
        switch self.configuration.source.format {
        case "text":
            payload = .string(String(decoding: data, as: UTF8.self))
        case "base64":
            payload = .string(data.base64EncodedString())
        default:
            do {
                payload = try JSONParser.parse(data)
            } catch {
                await self.park(stem, in: folder, error: SkyError(.badRequest, "not valid JSON: \(error)"), code: nil, attempts: 0, input: data)
                return
            }
        }
        let request = RequestEnvelope(
            route: self.configuration.route,
            payload: payload,
            meta: ["source": "files", "file": stem, "size": "\(data.count)", "path": folder.processing + "/" + stem],
            trace: self.runner.sampler.root()
        )
        // An ordered source: the file's place in its key's lane, taken before the next file is.
        let order = self.configuration.source.order
        let ticket = order.flatMap { DocumentPath($0.key)?.value(in: payload) }.flatMap { $0 == .null ? nil : ($0.stringValue ?? JSONWriter.string($0)) }
            .map(lane.lanes.reserve)
        lane.handoff()
        if let ticket {
            await lane.lanes.wait(for: ticket)
            // Its turn came after the stop: not started; it stays in .processing/ for the next start.
            guard lane.lanes.isTurn(of: ticket), !lane.isStopping() else {
                lane.lanes.leave(ticket)
                return
            }
        }
        defer { if let ticket { lane.lanes.leave(ticket) } }
        self.counters.add("\(self.counterPrefix)-inflight")
        defer { self.counters.add("\(self.counterPrefix)-inflight", -1) }
        do throws(SkyError) {
            let result: RouteResult
            do throws(SkyError) {
                result = try await self.runner.run(request)
            } catch {
                guard let ticket, order?.onFailure == .hold, !Task.isCancelled else { throw error }
                switch await self.hold(stem, data: data, key: ticket.key, error: error, isStopping: lane.isStopping, rerun: { () async throws(SkyError) in try await self.runner.run(request) }) {
                case .success(let again): result = again
                case .failure(let final):
                    await self.park(stem, in: folder, error: final, code: nil, attempts: 1, input: data, reported: true)
                    return
                case nil: return  // stopping: it stays in .processing/ and runs again at the next start
                }
            }
            let output = Data(JSONWriter.string(result.answerDocument).utf8)
            // Writing the answer can fail for a while (disk full): keep the answer and try again
            // with back-off rather than run the route again; at shutdown the input stays in
            // .processing/ and is taken again at the next start.
            guard await self.retrying("cannot write the answer; the input stays in .processing/ until it is written", file: stem, counter: "write-errors", {
                try folder.writeAtomically(output, to: folder.out, name: stem + ".json", durable: false)
            }) else { return }
            // The input moves to .done/ only once its answer is on disk: the committer's job,
            // while this worker takes the next file.
            await commits.submit(WrittenAnswer(stem: stem, folder: folder))
            if self.failures.redrivesInFlight {
                self.failures.succeeded(route: self.configuration.route, source: .files, resource: self.configuration.source.dir, identity: .stable(stem))
            }
        } catch {
            // Cut short by a stop that outlasted the drain limit: not the file's failure. It
            // stays in .processing/, as after a crash, and runs again at the next start.
            if Task.isCancelled {
                self.logger.notice("file interrupted by the stop; it stays in .processing/ and runs again at the next start", metadata: ["file": "\(stem)"])
                return
            }
            await self.park(stem, in: folder, error: error, code: nil, attempts: 1, input: data, traceID: request.trace.sampled ? request.trace.traceID : nil)
        }
    }

    /// Moves a failed input to `.failed/` beside `NAME.error.json`, and reports it (`sky failed`).
    /// - Parameter code: the code `NAME.error.json` gives, when not the error's own (`refused`,
    ///   `unreadable`).
    /// - Parameter reported: the failure was reported already (a held file, dropped).
    private func park(_ stem: String, in folder: DropFolder, error: SkyError, code: String?, attempts: Int, input: Data?, traceID: String? = nil, reported: Bool = false) async {
        var document: [String: JSONValue] = ["code": .string(code ?? error.code.description), "reason": .string(error.message)]
        if let step = error.step { document["step"] = .int(Int64(step)) }
        if let service = error.service { document["service"] = .string(service) }
        document["file"] = .string(stem)
        document["route"] = .string(self.configuration.route)
        document["attempts"] = .int(Int64(attempts))
        document["at"] = .string(ISO8601DateFormatter().string(from: Date()))
        let data = Data(JSONWriter.string(.object(document)).utf8)
        self.logger.warning("file failed; parked in .failed/", metadata: ["file": "\(stem)", "error": "\(error.message)"])
        do {
            try await self.threadPool.runIfActive { try folder.writeAtomically(data, to: folder.failed, name: stem + ".error.json", durable: true) }
        } catch {
            self.logger.error("cannot write the error file", metadata: ["file": "\(stem)", "error": "\(error)"])
        }
        await self.finish(stem, to: folder.failed, in: folder)
        self.counters.add("\(self.counterPrefix)-failed")
        if reported { return }
        self.failures.failed(FailedInput(
            route: self.configuration.route, source: .files, resource: self.configuration.source.dir, identity: .stable(stem), input: input.map(Array.init),
            details: ["file": stem], error: error, traceID: traceID
        ))
    }

    /// Holds `key`'s lane with a failed file (`onFailure: hold`): it stays in `.processing/`,
    /// reported (`sky failed`), until it is redriven (and runs again here, in its place) or
    /// dropped; later files with its key wait behind it.
    /// - Returns: the answer once a run succeeds; the last error, the drop's reason added, once
    ///   it is dropped; `nil` when the source stops first.
    private func hold(
        _ stem: String, data: Data, key: String, error: SkyError, isStopping: @escaping @Sendable () -> Bool, rerun: () async throws(SkyError) -> RouteResult
    ) async -> Result<RouteResult, SkyError>? {
        let source = self.configuration.source
        var error = error
        while true {
            self.counters.add("\(self.counterPrefix)-held")
            self.logger.warning("file failed; its lane is held until it is redriven or dropped", metadata: ["file": "\(stem)", "key": "\(key)", "error": "\(error)"])
            self.failures.failed(FailedInput(
                route: self.configuration.route, source: .files, resource: source.dir, identity: .stable(stem), input: Array(data),
                details: ["file": stem, "orderKey": key, "hold": "true"], error: error
            ))
            switch await self.failures.decision(route: self.configuration.route, source: .files, resource: source.dir, identity: .stable(stem), isStopping: isStopping) {
            case .runAgain:
                do throws(SkyError) {
                    return .success(try await rerun())
                } catch let again {
                    error = again
                }
            case .dropped(let reason):
                error.message += " (dropped: \(reason))"
                return .failure(error)
            case .stopped:
                return nil
            }
        }
    }

    /// Moves the input out of `.processing/`; when that fails (permissions, disk), logs once
    /// and retries with backoff instead of processing the file again.
    private func finish(_ stem: String, to destination: String, in folder: DropFolder) async {
        _ = await self.retrying("cannot move the input out of .processing/; retrying with backoff", file: stem, counter: "move-errors") {
            try folder.move(stem, to: destination)
        }
    }

    private func retrying(
        _ message: @autoclosure () -> Logger.Message,
        file stem: String,
        counter: String,
        _ body: @escaping @Sendable () throws -> Void
    ) async -> Bool {
        await BackoffRetry(logger: self.logger, counters: self.counters, threadPool: self.threadPool, counter: "\(self.counterPrefix)-\(counter)").run(message(), file: stem, body)
    }
}
