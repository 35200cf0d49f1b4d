import Foundation
public import NIOPosix
public import RegistryKit
import SkyLib

/// Applies a drill's faults, only ever to what it can show is part of the cluster it was
/// pointed at: a node in its registry whose process listens, on this machine, on the address
/// its record gives; the registry's own process or file; the broker the route names, when it
/// listens here; a route's drop folder on a file system small enough to fill.
public final class FaultInjector: Sendable {
    /// Where the faults' targets are found.
    let registry: any NodeDirectory
    /// Holds an SQLite registry's write lock for a while.
    let holdWriteLock: (@Sendable (Duration) async throws -> Void)?
    /// Where blocking file work runs (a fill).
    let threadPool: NIOThreadPool
    /// The registry's address (the SQLite file, or the MongoDB server's host and port).
    let registryAddress: RegistryAddress
    /// The broker the route reads from, `HOST:PORT`, when it has a STOMP source.
    let broker: String?
    /// The drop folders a `fill` may fill, by route name (absolute paths).
    let dropFolders: [String: String]
    /// The most a `fill` writes: a drop folder on a larger file system is refused.
    let fillLimit: Int
    /// Where restarted processes write their output.
    let logs: String
    /// Seconds since the start of the load.
    let clock: @Sendable () -> Double

    /// Creates a `FaultInjector` from its parts.
    public init(
        registry: any NodeDirectory, registryAddress: RegistryAddress, holdWriteLock: (@Sendable (Duration) async throws -> Void)?, threadPool: NIOThreadPool,
        broker: String?, dropFolders: [String: String], fillLimit: Int, logs: String, clock: @escaping @Sendable () -> Double
    ) {
        self.registry = registry
        self.holdWriteLock = holdWriteLock
        self.threadPool = threadPool
        self.registryAddress = registryAddress
        self.broker = broker
        self.dropFolders = dropFolders
        self.fillLimit = fillLimit
        self.logs = logs
        self.clock = clock
    }

    /// Checks every fault's target before the load starts, so a drill that would touch
    /// something it may not never begins.
    /// - Throws: ``DrillError`` (`refused`) naming the fault and why.
    public func check(_ schedule: FaultSchedule) async throws(DrillError) {
        for fault in schedule.faults {
            switch fault.action {
            case .fill:
                _ = try self.fillTarget(fault)
            case .suspend where fault.target == "registry":
                if case .mongodb = self.registryAddress { _ = try self.processTarget(fault, pick: 0) }
            case _ where fault.target == "registry" || fault.target == "broker":
                _ = try self.processTarget(fault, pick: 0)
            default:
                _ = try await self.nodeTargets(fault, pick: 0)
            }
        }
    }

    /// Applies one occurrence of `fault` and returns what was done (or why nothing was).
    func apply(_ fault: Fault, occurrence: Int) async -> FaultEvent {
        let start = self.clock()
        func event(_ detail: String, applied: Bool = true, end: Double? = nil) -> FaultEvent {
            FaultEvent(fault: fault.description, occurrence: occurrence, start: start, end: end ?? self.clock(), detail: detail, applied: applied)
        }
        do {
            switch fault.action {
            case .fill:
                return event(try await self.fill(fault))
            case .suspend where fault.target == "registry":
                if case .sqlite(let path) = self.registryAddress { return event(try await self.lock(path, for: fault.length ?? FaultSchedule.defaultLength)) }
                return event(try await self.act(fault, on: [try self.processTarget(fault, pick: 0)]))
            case _ where fault.target == "registry" || fault.target == "broker":
                return event(try await self.act(fault, on: [try self.processTarget(fault, pick: occurrence - 1)]))
            default:
                let detail = try await self.act(fault, on: try await self.nodeTargets(fault, pick: occurrence - 1))
                // A kill that is not followed by a start has no end of its own: its phase is the
                // second after it, while routers find the instance gone.
                return event(detail, end: fault.action == .kill && fault.length == nil ? start + 1 : nil)
            }
        } catch {
            return event(error.message, applied: false)
        }
    }

    /// `registry` (a MongoDB server) or `broker`: the process listening on its address here.
    private func processTarget(_ fault: Fault, pick: Int) throws(DrillError) -> (LocalProcess, String) {
        let address: String
        switch fault.target {
        case "registry":
            guard case .mongodb(let uri) = self.registryAddress else {
                throw DrillError(.refused, "\(fault): the registry is an SQLite file, not a process; only suspend:registry applies to it (it holds the file's write lock)")
            }
            let hosts = uri.dropFirst("mongodb://".count).split(separator: "/").first.map { $0.split(separator: "@").last.map(String.init) ?? "" } ?? ""
            address = String(hosts.split(separator: ",").first ?? "")
        default:
            guard let broker = self.broker else { throw DrillError(.refused, "\(fault): the route reads from no broker") }
            address = broker
        }
        guard LocalAddresses.isLocal(address) else {
            throw DrillError(.refused, "\(fault): \(fault.target) at \(address) is not on this machine; the drill only faults processes it can see")
        }
        guard let process = LocalProcess.listening(on: address) else {
            throw DrillError(.refused, "\(fault): no process listens on \(address) here")
        }
        return (process, "\(fault.target) at \(address)")
    }

    /// The nodes a service, `*`, `router`, `initiator` or `reaper` fault takes: one instance per service
    /// (the `pick`-th, in turn), each shown to be a process here that serves its address.
    private func nodeTargets(_ fault: Fault, pick: Int) async throws(DrillError) -> [(LocalProcess, String)] {
        let nodes: [NodeRecord]
        do { nodes = try await self.registry.nodes(matching: NodeQuery()) } catch {
            throw DrillError(.refused, "\(fault): cannot read the registry's nodes: \(error)")
        }
        let ready = nodes.filter { $0.status == .ready }
        let routerPIDs = Set(ready.filter { $0.kind == .router || $0.kind == .initiator }.map { "\($0.host)/\($0.pid)" })
        let groups: [[NodeRecord]]
        switch fault.target {
        case "router", "reaper", "initiator":
            let kind = NodeKind(rawValue: fault.target) ?? .router
            groups = [ready.filter { $0.kind == kind }]
        case "*":
            groups = Dictionary(grouping: ready.filter { $0.kind == .service }, by: \.service).sorted { $0.key < $1.key }.map(\.value)
        default:
            groups = [ready.filter { $0.kind == .service && $0.service == fault.target }]
        }
        var targets: [(LocalProcess, String)] = []
        var refusals: [String] = []
        for group in groups {
            var candidates: [(LocalProcess, String)] = []
            for node in group.sorted(by: { $0.id < $1.id }) {
                let name = "\(node.kind == .service ? node.service : node.kind.rawValue) at \(node.address)"
                if node.kind == .service && routerPIDs.contains("\(node.host)/\(node.pid)") {
                    refusals.append("\(name) runs inside a router's process (pid \(node.pid)); faulting it would fault the router: run it as its own process (sky service \(node.service)), or name router")
                } else if !LocalAddresses.isLocal(node.address) {
                    refusals.append("\(name) is not on this machine")
                } else if let process = LocalProcess.verified(pid: node.pid, address: node.address) {
                    candidates.append((process, "\(name), pid \(node.pid)"))
                } else {
                    refusals.append("\(name): pid \(node.pid) does not listen there on this machine")
                }
            }
            if !candidates.isEmpty { targets.append(candidates[pick % candidates.count]) }
        }
        guard !targets.isEmpty else {
            let why = refusals.isEmpty ? "no ready \(fault.target == "*" ? "service" : fault.target) node in the registry" : refusals.joined(separator: "; ")
            throw DrillError(.refused, "\(fault): \(why)")
        }
        return targets
    }

    /// Kills, restarts or suspends `targets`, all at once, and waits until each is over.
    private func act(_ fault: Fault, on targets: [(LocalProcess, String)]) async throws(DrillError) -> String {
        var details: [String] = []
        await withTaskGroup(of: String.self) { group in
            for (process, name) in targets {
                group.addTask { await self.act(fault, on: process, name: name) }
            }
            for await detail in group { details.append(detail) }
        }
        return details.sorted().joined(separator: "; ")
    }

    /// One process's fault.
    private func act(_ fault: Fault, on process: LocalProcess, name: String) async -> String {
        switch fault.action {
        case .suspend:
            let length = fault.length ?? FaultSchedule.defaultLength
            process.signal(SIGSTOP)
            // Whatever happens to the drill, the process goes on: the sleep's cancellation is
            // ignored and SIGCONT always follows.
            try? await Task.sleep(for: length)
            process.signal(SIGCONT)
            return "SIGSTOP \(name) for \(DurationParser.format(length)), then SIGCONT"
        case .kill, .restart:
            let launch = fault.action == .restart || fault.length != nil ? process.launch() : nil
            let signal = fault.action == .kill ? SIGKILL : SIGTERM
            process.signal(signal)
            // A graceful stop finishes what is in hand: as long as that takes (a minute at most).
            let gone = await Self.poll(until: .now + .seconds(fault.action == .kill ? 5 : 60)) { !process.isAlive }
            var detail = "\(fault.action == .kill ? "SIGKILL" : "SIGTERM") \(name)"
            if !gone { return detail + "; still running after the wait, not started again" }
            guard fault.action == .restart || fault.length != nil else { return detail }
            guard let launch else { return detail + "; could not read its command line, not started again" }
            if let length = fault.length { try? await Task.sleep(for: length) }
            do {
                let pid = try LocalProcess.start(launch, log: "\(self.logs)/restarted-\(process.pid).log")
                detail += "; started again as pid \(pid)"
                if fault.length != nil { detail += " after \(DurationParser.format(fault.length!))" }
            } catch {
                detail += "; could not start it again: \(error)"
            }
            return detail
        case .fill:
            return "fill applies to a route's drop folder"
        }
    }

    /// Holds an SQLite registry's write lock for `length`: writers (heartbeats, registrations,
    /// the reaper) wait on it and time out, as when its disk stalls.
    private func lock(_ path: String, for length: Duration) async throws(DrillError) -> String {
        guard let holdWriteLock = self.holdWriteLock else { throw DrillError(.refused, "suspend:registry: nothing can hold \(path)'s write lock here") }
        do { try await holdWriteLock(length) } catch {
            throw DrillError(.refused, "suspend:registry: cannot hold \(path)'s write lock: \(error)")
        }
        return "held the write lock of \(path) for \(DurationParser.format(length))"
    }

    /// The drop folder a `fill` fills and the file system's free bytes, refused when larger
    /// than the limit.
    private func fillTarget(_ fault: Fault) throws(DrillError) -> (folder: String, free: Int) {
        guard let folder = self.dropFolders[fault.target] else {
            throw DrillError(.refused, "\(fault): route '\(fault.target)' has no drop folder (files or csv source) the drill can see")
        }
        var stats = statvfs()
        guard statvfs(folder, &stats) == 0 else { throw DrillError(.refused, "\(fault): cannot read the file system of \(folder)") }
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        guard free <= self.fillLimit else {
            throw DrillError(.refused, "\(fault): \(folder) is on a file system with \(free >> 20) MiB free, more than the \(self.fillLimit >> 20) MiB a drill fills (--fill-limit); give the folder a small file system of its own (mount -t tmpfs -o size=16m tmpfs DIR)")
        }
        return (folder, free)
    }

    /// Fills the drop folder's file system with one file for the fault's length, then removes it.
    private func fill(_ fault: Fault) async throws(DrillError) -> String {
        let (folder, _) = try self.fillTarget(fault)
        let path = folder + "/.skynet-drill-fill"
        let length = fault.length ?? FaultSchedule.defaultLength
        let written: Int
        do {
            written = try await self.threadPool.runIfActive {
                let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                guard descriptor >= 0 else { throw DrillError(.refused, "\(fault): cannot create \(path)") }
                defer { close(descriptor) }
                let chunk = [UInt8](repeating: 0, count: 1 << 20)
                var total = 0
                while true {
                    let count = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                    if count <= 0 { break }
                    total += count
                }
                // What a smaller write still fits.
                let small = [UInt8](repeating: 0, count: 4096)
                while small.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) > 0 { total += 4096 }
                return total
            }
        } catch {
            throw DrillError(.refused, "\(fault): \(error)")
        }
        try? await Task.sleep(for: length)
        unlink(path)
        return "filled \(folder)'s file system (\(written >> 10) KiB) for \(DurationParser.format(length))"
    }

    /// Polls `condition` every 50 ms until it holds or `deadline` passes.
    static func poll(until deadline: ContinuousClock.Instant, _ condition: () -> Bool) async -> Bool {
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }
}

extension Error {
    /// What a person reads: a ``DrillError``'s message, else the error's own description.
    var message: String { (self as? DrillError)?.message ?? "\(self)" }
}
