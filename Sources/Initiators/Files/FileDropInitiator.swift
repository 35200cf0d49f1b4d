import Foundation
public import Logging
import NIOPosix
import ServiceLifecycle
public import SkyLib

/// The file initiator: every complete file dropped into a folder becomes one route request.
///
/// A file is claimed by an atomic rename into `DIR/.processing/`, so two engines on one folder
/// never both take it. On success the route's answer is written to `DIR/.out/NAME.json` and the
/// input moved to `DIR/.done/` once the answer is on disk (answers are synced in groups, one
/// `syncfs` for all those finished together: ``SyncGroup``); on final failure the input goes to `DIR/.failed/` beside
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
        /// How answers are made durable before their inputs move (tests stand in a failing one).
        var syncs = SyncGroup()

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

    /// Creates a `FileDropInitiator` from its parts.
    public init(configuration: Configuration, runner: any RouteRunner, counters: Counters, logger: Logger) {
        self.configuration = configuration
        self.runner = runner
        self.counters = counters
        var logger = logger
        logger[metadataKey: "initiator"] = "files"
        logger[metadataKey: "dir"] = "\(configuration.source.dir)"
        self.logger = logger
    }

    public var summary: String { "files \(self.configuration.source.dir)/\(self.configuration.source.pattern) → route \(self.configuration.route)" }

    private var counterPrefix: String { "files.\(self.configuration.route)" }

    public func run() async throws {
        let source = self.configuration.source
        let loop = DropFolderLoop(
            dir: source.dir, pattern: source.pattern, workers: source.concurrency, scanInterval: self.configuration.scanInterval, logger: self.logger,
            counters: self.counters, counterPrefix: self.counterPrefix, backlogRoute: self.configuration.route
        )
        try await loop.run { item, folder, _ in await self.handle(item, in: folder) }
    }

    private func handle(_ item: DropItem, in folder: DropFolder) async {
        let stem: String
        switch item {
        case .claimed(let claimed):
            stem = claimed
        case .fresh(let name):
            do {
                // One trip to the thread pool for both: a file costs a few of them, and each
                // is a wake-up and a context switch.
                let claimed = try await NIOThreadPool.singleton.runIfActive { () throws -> (String, Bool)? in
                    let escapes = folder.escapes(name)
                    return try folder.claim(name).map { ($0, escapes) }
                }
                guard let (claimedStem, escapes) = claimed else { return }  // another process took it
                stem = claimedStem
                if escapes {
                    await self.park(stem, in: folder, error: ["code": "refused", "reason": .string("symlink to a file outside \(folder.root)")], attempts: 0)
                    return
                }
            } catch {
                self.counters.add("\(self.counterPrefix)-claim-errors")
                self.logger.error("cannot take file", metadata: ["file": "\(name)", "error": "\(error)"])
                return
            }
        }
        await self.process(stem, in: folder)
    }

    private func process(_ stem: String, in folder: DropFolder) async {
        let limit = self.configuration.maxFileBytes
        let data: Data
        do {
            data = try await NIOThreadPool.singleton.runIfActive { try folder.read(stem, limit: limit) }
        } catch {
            await self.park(stem, in: folder, error: ["code": "unreadable", "reason": .string("\(error)")], attempts: 0)
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
                await self.park(stem, in: folder, error: ["code": "bad_request", "reason": .string("not valid JSON: \(error)")], attempts: 0)
                return
            }
        }
        let request = RequestEnvelope(
            route: self.configuration.route,
            payload: payload,
            meta: ["source": "files", "file": stem, "size": "\(data.count)", "path": folder.processing + "/" + stem],
            trace: self.runner.sampler.root()
        )
        self.counters.add("\(self.counterPrefix)-inflight")
        defer { self.counters.add("\(self.counterPrefix)-inflight", -1) }
        do {
            let result = try await self.runner.run(request)
            let output = Data(JSONWriter.string(result.answerDocument).utf8)
            // Writing the answer can fail for a while (disk full): keep the answer and try again
            // with back-off rather than run the route again; at shutdown the input stays in
            // .processing/ and is taken again at the next start.
            guard await self.retrying("cannot write the answer; the input stays in .processing/ until it is written", file: stem, counter: "write-errors", {
                try folder.writeAtomically(output, to: folder.out, name: stem + ".json", durable: false)
            }) else { return }
            // The input moves to .done/ only once its answer is on disk.
            let syncs = self.configuration.syncs
            guard await BackoffRetry(logger: self.logger, counters: self.counters, counter: "\(self.counterPrefix)-sync-errors").run(
                "cannot sync the answer to disk; the input stays in .processing/ until it is", file: stem, waiting: { try await syncs.sync(folder) }
            ) else { return }
            await self.finish(stem, to: folder.done, in: folder)
            self.counters.add("\(self.counterPrefix)-done")
        } catch {
            var details: [String: JSONValue] = ["code": .string(error.code.description), "reason": .string(error.message)]
            if let step = error.step { details["step"] = .int(Int64(step)) }
            if let service = error.service { details["service"] = .string(service) }
            await self.park(stem, in: folder, error: details, attempts: 1)
        }
    }

    /// Moves a failed input to `.failed/` beside `NAME.error.json`.
    private func park(_ stem: String, in folder: DropFolder, error: [String: JSONValue], attempts: Int) async {
        var document = error
        document["file"] = .string(stem)
        document["route"] = .string(self.configuration.route)
        document["attempts"] = .int(Int64(attempts))
        document["at"] = .string(ISO8601DateFormatter().string(from: Date()))
        let data = Data(JSONWriter.string(.object(document)).utf8)
        self.logger.warning("file failed; parked in .failed/", metadata: ["file": "\(stem)", "error": "\(error["reason"] ?? "")"])
        do {
            try await NIOThreadPool.singleton.runIfActive { try folder.writeAtomically(data, to: folder.failed, name: stem + ".error.json", durable: true) }
        } catch {
            self.logger.error("cannot write the error file", metadata: ["file": "\(stem)", "error": "\(error)"])
        }
        await self.finish(stem, to: folder.failed, in: folder)
        self.counters.add("\(self.counterPrefix)-failed")
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
        await BackoffRetry(logger: self.logger, counters: self.counters, counter: "\(self.counterPrefix)-\(counter)").run(message(), file: stem, body)
    }
}
