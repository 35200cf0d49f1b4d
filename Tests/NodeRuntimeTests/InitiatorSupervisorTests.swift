import Foundation
import Initiators
import Logging
import NodeRuntime
import Routing
import ServiceLifecycle
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// How the supervisor stops initiators (issue 32): a source its route drops, an edited source
/// and a process shutdown all drain the initiator (it finishes what it holds), for at most the
/// drain limit; an edited source on the same folder starts only once the old one has drained.
/// The initiators are stand-ins that log what they are told; `DrainTests` runs the real ones
/// in the real `sky` binary.
@Suite(.timeLimit(.minutes(1)))
struct InitiatorSupervisorTests {
    /// An initiator that logs its start, its drain (graceful shutdown) and whether the drain
    /// ended by itself or was cut short.
    struct Recording: Initiator {
        let name: String
        let log: Locked<[String]>
        let drainTime: Duration
        var summary: String { self.name }

        func run() async throws {
            self.log.withLock { $0.append("\(self.name) started") }
            do {
                try await gracefulShutdown()
            } catch {
                self.log.withLock { $0.append("\(self.name) cancelled before any stop") }
                return
            }
            self.log.withLock { $0.append("\(self.name) draining") }
            do {
                try await Task.sleep(for: self.drainTime)
                self.log.withLock { $0.append("\(self.name) drained") }
            } catch {
                self.log.withLock { $0.append("\(self.name) cut short") }
            }
        }
    }

    static func route(_ name: String, dir: String, concurrency: Int) -> Route {
        Route(name: name, sources: [.files(FileSource(dir: dir, concurrency: concurrency))], steps: [RouteStep(service: "echo")])
    }

    func supervisor(_ table: RouteTable, log: Locked<[String]>, drainTime: Duration, drainLimit: Duration) -> InitiatorSupervisor {
        var supervisor = InitiatorSupervisor(
            table: table,
            makeInitiator: { route, source in
                guard case .files(let files) = source else { return nil }
                return Recording(name: "\(route) \(files.dir) c\(files.concurrency)", log: log, drainTime: drainTime)
            },
            logger: Logger(label: "supervisor-test")
        )
        supervisor.interval = .milliseconds(20)
        supervisor.drainLimit = drainLimit
        return supervisor
    }

    func index(of entry: String, in log: Locked<[String]>) -> Int? {
        log.withLock { $0.firstIndex(of: entry) }
    }

    @Test func aSourceItsRouteDropsDrainsAndIsNotCancelled() async throws {
        let table = RouteTable()
        table.install(Self.route("r", dir: "/tmp/a", concurrency: 8), file: "r.yaml")
        let log = Locked<[String]>([])
        let supervisor = self.supervisor(table, log: log, drainTime: .milliseconds(300), drainLimit: .seconds(10))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await supervisor.run() }
            #expect(await eventually { self.index(of: "r /tmp/a c8 started", in: log) != nil })
            table.remove(named: "r")
            #expect(await eventually { self.index(of: "r /tmp/a c8 drained", in: log) != nil }, "\(log.withLock { $0 })")
            #expect(self.index(of: "r /tmp/a c8 draining", in: log) != nil)
            group.cancelAll()
        }
        #expect(!log.withLock { $0 }.contains { $0.contains("cut short") || $0.contains("cancelled") }, "\(log.withLock { $0 })")
    }

    @Test func aDrainPastItsLimitIsCutShort() async throws {
        let table = RouteTable()
        table.install(Self.route("r", dir: "/tmp/a", concurrency: 8), file: "r.yaml")
        let log = Locked<[String]>([])
        let supervisor = self.supervisor(table, log: log, drainTime: .seconds(30), drainLimit: .milliseconds(300))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await supervisor.run() }
            #expect(await eventually { self.index(of: "r /tmp/a c8 started", in: log) != nil })
            let removed = ContinuousClock.now
            table.remove(named: "r")
            #expect(await eventually(within: 10) { self.index(of: "r /tmp/a c8 cut short", in: log) != nil }, "\(log.withLock { $0 })")
            // Cut at the limit, not after the 30 s the drain would have taken.
            #expect(ContinuousClock.now - removed < .seconds(10))
            group.cancelAll()
        }
    }

    /// An edited source on the same folder: the old initiator drains first, then the new one
    /// starts, so the two never work on one file at once.
    @Test func anEditedSourceStartsOnceTheOldOneOnItsFolderHasDrained() async throws {
        let table = RouteTable()
        table.install(Self.route("r", dir: "/tmp/a", concurrency: 8), file: "r.yaml")
        let log = Locked<[String]>([])
        let supervisor = self.supervisor(table, log: log, drainTime: .milliseconds(400), drainLimit: .seconds(10))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await supervisor.run() }
            #expect(await eventually { self.index(of: "r /tmp/a c8 started", in: log) != nil })
            table.install(Self.route("r", dir: "/tmp/a", concurrency: 4), file: "r.yaml")
            #expect(await eventually { self.index(of: "r /tmp/a c4 started", in: log) != nil }, "\(log.withLock { $0 })")
            group.cancelAll()
        }
        let drained = try #require(self.index(of: "r /tmp/a c8 drained", in: log))
        let started = try #require(self.index(of: "r /tmp/a c4 started", in: log))
        #expect(drained < started, "\(log.withLock { $0 })")
    }

    /// The process's graceful shutdown drains every initiator, and the supervisor ends once
    /// they all have.
    @Test func aShutdownDrainsEveryInitiator() async throws {
        let table = RouteTable()
        table.install(Self.route("r", dir: "/tmp/a", concurrency: 8), file: "r.yaml")
        table.install(Self.route("s", dir: "/tmp/b", concurrency: 2), file: "s.yaml")
        let log = Locked<[String]>([])
        let supervisor = self.supervisor(table, log: log, drainTime: .milliseconds(300), drainLimit: .seconds(10))
        let group = ServiceGroup(services: [supervisor], logger: Logger(label: "supervisor-test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await eventually { log.withLock { $0.filter { $0.hasSuffix("started") }.count } == 2 })
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        let entries = log.withLock { $0 }
        #expect(entries.filter { $0.hasSuffix("drained") }.count == 2, "\(entries)")
        #expect(!entries.contains { $0.contains("cut short") || $0.contains("cancelled") }, "\(entries)")
    }
}
