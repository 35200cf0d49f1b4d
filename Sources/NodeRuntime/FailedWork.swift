import Foundation
public import Logging
public import RegistryKit
public import RouteModel
public import ServiceLifecycle
public import SkyLib
import Synchronization

/// A node's side of failed work: what its initiators report failed goes to the registry's
/// ``FailedStore`` (buffered, written every ``interval``), and the items an operator asked to
/// redrive (`sky failed redrive`, the dashboard) whose source runs here are claimed and put back
/// by that source's initiator, or, for HTTP, run again here.
///
/// Reporting never waits for the registry: reports wait in a buffer of at most ``bufferLimit``
/// items, written in one call per interval and retried while the registry is away. Redrives
/// asked for and drops are looked for every fourth interval (once a second by default). Past the
/// limit the oldest reports are given up, counted (`failed-unrecorded`) and logged; the inputs
/// themselves are still where their sources parked them (`.failed/`, `rejects.csv`, the
/// dead-letter queue), so nothing is lost, only missing from `sky failed list`.
///
/// A redrive is claimed through the registry (``FailedStore/moveFailed(id:from:updatedBefore:to:actor:note:now:)``
/// from `redrive` to `running`), so of several nodes running the same source exactly one puts
/// it back. The input then runs as new input does; its initiator reports how it went: a
/// success makes the item `done`, a failure makes it `failed` again, one attempt more.
public final class FailedWork: FailedInputs, Service, Sendable {
    /// Which source an initiator runs: the key its redrives are found by.
    public struct SourceKey: Sendable, Hashable {
        /// The route.
        public var route: String
        /// The initiator kind.
        public var source: InputSource
        /// The folder or destination, as the route names it.
        public var resource: String

        /// Creates a `SourceKey` from its parts.
        public init(route: String, source: InputSource, resource: String) {
            self.route = route
            self.source = source
            self.resource = resource
        }
    }

    /// Where items are kept.
    let store: any FailedStore
    /// This node's id: the `node` of what it records, the `actor` of what it claims.
    let nodeID: String
    let counters: Counters
    let logger: Logger
    /// Runs HTTP items again (the node's router); `nil` on nodes that run no routes.
    let runner: (any RouteRunner)?
    /// How often reports are written and redrives looked for.
    public let interval: Duration
    /// Most reports waiting for the registry.
    public let bufferLimit: Int

    /// Reports not yet written.
    private let pending = Locked<[FailedItem]>([])
    /// Redrives this node put back, waiting for their input's outcome.
    private let inFlight = Locked<Set<String>>([])
    /// Whether ``inFlight`` is empty, read by initiators for every input they finish: an atomic.
    private let anyInFlight = Atomic<Bool>(false)
    /// Items whose re-run succeeded, to mark done.
    private let succeededIDs = Locked<[String]>([])
    /// The initiators that can put their inputs back, by the source they run.
    private let redrivers = Locked<[SourceKey: any Redriving]>([:])
    /// Drops of this node's items are counted once: those changed after this were not yet seen.
    private let dropsSeenUntil = Locked(Date())
    /// Inputs holding their lane here, by id, with their fate once known.
    private let held = Locked<[String: HeldDecision?]>([:])

    /// Creates a `FailedWork` from its parts.
    public init(
        store: any FailedStore, nodeID: String, counters: Counters, runner: (any RouteRunner)?, interval: Duration = .milliseconds(250), bufferLimit: Int = 10_000,
        logger: Logger
    ) {
        self.interval = interval
        self.bufferLimit = bufferLimit
        self.store = store
        self.nodeID = nodeID
        self.counters = counters
        self.runner = runner
        self.logger = logger
    }

    /// The id an input is known by (see ``FailedInput/Identity``).
    static func id(route: String, source: InputSource, resource: String, identity: FailedInput.Identity) -> String? {
        switch identity {
        case .stable(let key): FailedItem.stableID(route: route, source: source, resource: resource, key: key)
        case .given(let id): id
        case .fresh: nil
        }
    }

    public func failed(_ input: FailedInput) {
        let id = Self.id(route: input.route, source: input.source, resource: input.resource, identity: input.identity) ?? Identifiers.nodeID()
        let item = FailedItem(
            id: id, route: input.route, source: input.source, resource: input.resource, input: input.input, details: input.details,
            code: input.error.code.description, message: input.error.message, step: input.error.step, service: input.error.service,
            traceID: input.traceID, node: self.nodeID
        )
        self.settled(id)
        let overflow = self.pending.withLock { pending -> Int in
            pending.append(item)
            let over = pending.count - self.bufferLimit
            if over > 0 { pending.removeFirst(over) }
            return max(0, over)
        }
        self.counters.add("failed-recorded")
        self.counters.add("failed.\(input.route)-recorded")
        if overflow > 0 {
            self.counters.add("failed-unrecorded", Int64(overflow))
            self.logger.error(
                "the registry is behind: \(overflow) failed input(s) not recorded for `sky failed` (each is still where its source parked it)",
                metadata: ["route": "\(input.route)"]
            )
        }
    }

    public var redrivesInFlight: Bool { self.anyInFlight.load(ordering: .relaxed) }

    public func succeeded(route: String, source: InputSource, resource: String, identity: FailedInput.Identity) {
        guard let id = Self.id(route: route, source: source, resource: resource, identity: identity), self.settled(id) else { return }
        self.succeededIDs.withLock { $0.append(id) }
    }

    /// Takes `id` off the redrives in flight.
    /// - Returns: whether it was one.
    @discardableResult
    private func settled(_ id: String) -> Bool {
        guard self.redrivesInFlight else { return false }
        return self.inFlight.withLock { inFlight in
            let removed = inFlight.remove(id) != nil
            self.anyInFlight.store(!inFlight.isEmpty, ordering: .relaxed)
            return removed
        }
    }

    public func decision(
        route: String, source: InputSource, resource: String, identity: FailedInput.Identity, isStopping: @escaping @Sendable () -> Bool
    ) async -> HeldDecision {
        guard let id = Self.id(route: route, source: source, resource: resource, identity: identity) else { return .stopped }
        self.held.withLock { $0[id] = .some(nil) }
        defer { _ = self.held.withLock { $0.removeValue(forKey: id) } }
        while !isStopping() && !Task.isCancelled {
            if let decided = self.held.withLock({ $0[id] ?? nil }) { return decided }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return .stopped
    }

    /// Decides the held inputs whose item an operator moved: asked to redrive (claimed here, to
    /// run again in its lane, not put back behind the inputs waiting there) or dropped.
    func decideHeld() async throws {
        let waiting = self.held.withLock { held in held.filter { $0.value == nil }.map(\.key) }
        guard !waiting.isEmpty else { return }
        for item in try await self.store.failedItems(FailedQuery(ids: waiting, states: [.redrive, .dropped]), limit: waiting.count) {
            var decided: HeldDecision?
            if item.state == .dropped {
                decided = .dropped(item.note)
            } else if try await self.store.moveFailed(
                id: item.id, from: [.redrive], updatedBefore: nil, to: .running, actor: self.nodeID,
                note: "run again in its held lane on node \(Identifiers.short(self.nodeID))", now: Date()
            ) != nil {
                self.inFlight.withLock { inFlight in
                    inFlight.insert(item.id)
                    self.anyInFlight.store(true, ordering: .relaxed)
                }
                self.counters.add("failed-redriven")
                self.counters.add("failed.\(item.route)-redriven")
                decided = .runAgain
            }
            if let decided { self.held.withLock { $0[item.id] = .some(decided) } }
        }
    }

    /// From now on, redrives of `key` asked for are put back by `redriver` (an initiator that
    /// started on that source).
    public func register(_ redriver: any Redriving, for key: SourceKey) {
        self.redrivers.withLock { $0[key] = redriver }
    }

    /// The initiator of `key` stopped.
    public func unregister(_ key: SourceKey) {
        _ = self.redrivers.withLock { $0.removeValue(forKey: key) }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var round = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                // Reports go out every round; the registry is asked for redrives and drops every
                // fourth (once a second with the default interval), which is what each node of a
                // cluster costs the registry while nothing fails.
                await self.tick(asking: round % 4 == 0)
                round += 1
            }
        }
        // What failed up to the stop is still recorded.
        await self.flush()
    }

    /// One round: write reports and outcomes, decide held inputs, and, when `asking`, put back
    /// the redrives asked for and count drops.
    func tick(asking: Bool = true) async {
        await self.flush()
        do {
            try await self.decideHeld()
            guard asking else { return }
            try await self.redriveAsked()
            try await self.countDrops()
        } catch {
            self.logger.debug("cannot read failed items from the registry", metadata: ["error": "\(error)"])
        }
    }

    /// Writes the buffered reports and marks done the items whose re-run succeeded; what cannot
    /// be written now is kept for the next round.
    func flush() async {
        let items = self.pending.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        if !items.isEmpty {
            do {
                try await self.store.recordFailed(items)
            } catch {
                self.logger.warning("cannot record failed inputs in the registry; trying again", metadata: ["error": "\(error)", "items": "\(items.count)"])
                self.pending.withLock { pending in pending = Array((items + pending).suffix(self.bufferLimit)) }
            }
        }
        let done = self.succeededIDs.withLock { ids in
            defer { ids.removeAll() }
            return ids
        }
        for id in done {
            do {
                if try await self.store.moveFailed(id: id, from: [.running], updatedBefore: nil, to: .done, actor: self.nodeID, note: "ran again and succeeded", now: Date()) != nil {
                    self.counters.add("failed-redrive-succeeded")
                }
            } catch {
                self.succeededIDs.withLock { $0.append(id) }
            }
        }
    }

    /// Claims the items asked to be redriven whose source runs here, and puts them back.
    func redriveAsked() async throws {
        let redrivers = self.redrivers.withLock { $0 }
        guard !redrivers.isEmpty || self.runner != nil else { return }
        let asked = try await self.store.failedItems(FailedQuery(states: [.redrive]), limit: 200)
        let held = self.held.withLock { Set($0.keys) }
        var claimed: [SourceKey: [FailedItem]] = [:]
        // A held input is run again by the lane that holds it (``decideHeld()``), never put back
        // by another node behind the inputs waiting in that lane.
        for item in asked where !held.contains(item.id) && item.details["hold"] != "true" {
            let key = SourceKey(route: item.route, source: item.source, resource: item.resource)
            let local = item.source == .http ? (self.runner?.route(named: item.route) != nil) : redrivers[key] != nil
            guard local,
                let moved = try await self.store.moveFailed(
                    id: item.id, from: [.redrive], updatedBefore: nil, to: .running, actor: self.nodeID, note: "put back by node \(Identifiers.short(self.nodeID))", now: Date()
                )
            else { continue }
            claimed[key, default: []].append(moved)
        }
        for (key, items) in claimed {
            if key.source == .http {
                for item in items { await self.runAgain(item) }
                continue
            }
            guard let redriver = redrivers[key] else { continue }
            self.inFlight.withLock { inFlight in
                inFlight.formUnion(items.map(\.id))
                self.anyInFlight.store(true, ordering: .relaxed)
            }
            let refused = await redriver.redrive(items.map {
                Redrive(id: $0.id, route: $0.route, source: $0.source, resource: $0.resource, input: $0.input, inputBytes: $0.inputBytes, details: $0.details)
            })
            for item in items {
                if let reason = refused[item.id] {
                    self.settled(item.id)
                    _ = try await self.store.moveFailed(id: item.id, from: [.running], updatedBefore: nil, to: .failed, actor: self.nodeID, note: "not redriven: \(reason)", now: Date())
                    self.logger.warning("cannot redrive a failed input", metadata: ["route": "\(item.route)", "id": "\(item.id)", "reason": "\(reason)"])
                } else {
                    self.counters.add("failed-redriven")
                    self.counters.add("failed.\(item.route)-redriven")
                }
            }
            self.logger.notice("redrive: inputs put back", metadata: ["route": "\(key.route)", "source": "\(key.source.rawValue) \(key.resource)", "count": "\(items.count - refused.count)"])
        }
    }

    /// An HTTP item runs its route again here: done with the answer's start as its note, or
    /// failed once more.
    private func runAgain(_ item: FailedItem) async {
        guard let runner = self.runner else { return }
        self.counters.add("failed-redriven")
        self.counters.add("failed.\(item.route)-redriven")
        let payload: JSONValue
        do {
            guard let input = item.input else { throw SkyError(.badRequest, "its body was over \(FailedItem.inputLimit) bytes and was not kept") }
            payload = try JSONParser.parse(Array(input.utf8))
        } catch {
            let reason = (error as? SkyError)?.message ?? "its body is not JSON: \(error)"
            _ = try? await self.store.moveFailed(id: item.id, from: [.running], updatedBefore: nil, to: .failed, actor: self.nodeID, note: "not redriven: \(reason)", now: Date())
            return
        }
        let request = RequestEnvelope(route: item.route, payload: payload, meta: ["source": "redrive", "failed-id": item.id], trace: runner.sampler.root())
        do throws(SkyError) {
            let result = try await runner.run(request)
            let answer = JSONWriter.string(result.answerDocument)
            _ = try? await self.store.moveFailed(
                id: item.id, from: [.running], updatedBefore: nil, to: .done, actor: self.nodeID, note: "ran again and succeeded: \(answer.prefix(200))", now: Date()
            )
            self.counters.add("failed-redrive-succeeded")
        } catch {
            self.failed(FailedInput(
                route: item.route, source: .http, resource: item.resource, identity: .given(item.id), input: item.input.map { Array($0.utf8) },
                details: item.details, error: error, traceID: request.trace.sampled ? request.trace.traceID : nil
            ))
        }
    }

    /// Counts drops of this node's items (`failed-dropped`), each once.
    func countDrops() async throws {
        let since = self.dropsSeenUntil.withLock { $0 }
        let dropped = try await self.store.failedItems(FailedQuery(states: [.dropped], node: self.nodeID, updatedSince: since), limit: 1000)
        guard let latest = dropped.map(\.updatedAt).max() else { return }
        self.dropsSeenUntil.withLock { $0 = max($0, latest) }
        self.counters.add("failed-dropped", Int64(dropped.count))
        for item in dropped {
            self.counters.add("failed.\(item.route)-dropped")
            self.logger.notice(
                "failed input dropped", metadata: ["route": "\(item.route)", "id": "\(item.id)", "by": "\(item.actor)", "reason": "\(item.note)"]
            )
        }
    }
}
