import ArgumentParser
import Drill
import Foundation
import NIOPosix
import NodeRuntime
import RegistryKit
import RouteModel
import SkyLib

/// `sky drill`: a fault drill on a live cluster: drives a route with generated inputs while a
/// fault schedule runs, then accounts for every input by id.
struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Drive a route on a live cluster while faults run, and account for every input: answered, failed, parked, missing, duplicated.",
        discussion: """
            Faults (--faults, comma-separated) are ACTION:TARGET@AT[/FOR] or ACTION:TARGET@every PERIOD[/FOR]: \
            kill (SIGKILL; with /FOR started again after FOR), restart (SIGTERM, then started again), \
            suspend (SIGSTOP for FOR; for an SQLite registry its write lock is held), fill (the file system of a \
            route's drop folder, when it is small). Targets: a service's name (one instance, in turn), * (one \
            instance of every service), router, initiator, reaper, registry, broker, or for fill a route's name. Only \
            processes shown to be the cluster's, on this machine, are touched: anything else is refused before \
            the load starts. Exits 0 when every input is accounted for, 1 when any is missing or duplicated \
            beyond what its source allows (STOMP is at-least-once), 2 when the drill could not run.
            """
    )

    /// The route driven, by name (its file in `--routes`, else as pushed to the registry).
    @Option(help: "The route to drive.") var route: String
    /// The fault schedule; empty for a baseline run without faults.
    @Option(help: "The fault schedule, e.g. \"kill:uppercase@30s/2s,suspend:registry@every 60s/10s\" (none: a baseline).") var faults: String = ""
    /// How long the load runs (`--for`).
    @Option(name: .customLong("for"), help: "How long the load runs (30s, 5m).") var length: String = "1m"
    /// Inputs a second, for each source.
    @Option(help: "Inputs a second, per source.") var rate: Double = 20
    /// The sources driven; by default the route's own, and HTTP when a router is ready.
    @Option(help: "Sources to drive, comma-separated: http, files, csv, stomp (default: the route's own, and http when a router is ready).") var source: String?
    /// HTTP requests in flight at once.
    @Option(help: "HTTP requests in flight at most.") var concurrency: Int = 4
    /// How long the drill waits after the load for outcomes still missing.
    @Option(help: "How long to wait after the load for the last outcomes.") var settle: String = "30s"
    /// The document every input carries (a CSV row takes its fields as columns).
    @Option(help: "Every input's body, a JSON document.") var input: String = #"{"text":"drill"}"#
    /// The router to post to, when not the first ready one in the registry.
    @Option(help: "HOST:PORT of the router to post to (default: the first ready router in the registry).") var http: String?
    /// Where the route file is read from.
    @Option(help: "Folder the route file is read from (else the registry's pushed routes).") var routes: String = "Routes"
    /// The cluster's registry.
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
    /// Where the processes the drill starts again write their output.
    @Option(help: "Where processes the drill starts again write their output.") var logs: String = ".skynet/drill"
    /// The most a `fill` fault writes, MiB.
    @Option(name: .customLong("fill-limit"), help: "The most a fill may write, in MiB: a drop folder on a file system with more free space is refused.") var fillLimit: Int = 256
    /// A file to also write the JSON report to.
    @Option(name: .customLong("report"), help: "Also write the JSON report to this file.") var reportFile: String?
    /// Whether the report is printed as JSON.
    @Flag(help: "Print the report as JSON.") var json = false

    /// Durations that parse, and a rate and concurrency in range, before anything runs.
    func validate() throws {
        guard let length = DurationParser.parse(self.length), length > .zero else { throw ValidationError("--for '\(self.length)' is not a duration (30s, 5m)") }
        guard DurationParser.parse(self.settle) != nil else { throw ValidationError("--settle '\(self.settle)' is not a duration (30s)") }
        guard self.rate > 0, self.rate <= 10_000 else { throw ValidationError("--rate must be above 0 and at most 10000 a second") }
        guard self.concurrency > 0 else { throw ValidationError("--concurrency must be at least 1") }
        _ = length
    }

    /// Runs the drill and prints its report; the exit status is its verdict.
    func run() async throws {
        let address = try RegistryAddress.resolve(flag: self.registry)
        let registry = try await address.open()
        let schedule: FaultSchedule
        let route: Route
        do {
            schedule = try FaultSchedule.parse(self.faults)
            route = try await self.loadRoute(registry: registry)
        } catch {
            FileHandle.standardError.write(Data("sky drill: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var configuration = Drill.Configuration(
            route: route, schedule: schedule, duration: DurationParser.parse(self.length)!, registryAddress: address, logs: self.logs
        )
        configuration.rate = self.rate
        configuration.concurrency = self.concurrency
        configuration.settle = DurationParser.parse(self.settle)!
        configuration.input = self.input
        configuration.http = self.http
        configuration.fillLimit = self.fillLimit << 20
        configuration.environment = ProcessInfo.processInfo.environment
        configuration.holdRegistryWriteLock = address.writeLockHolder
        configuration.sources = self.source.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        let drill = Drill(configuration: configuration, registry: registry, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, threadPool: NIOThreadPool.singleton)
        let report: DrillReport
        do {
            if !self.json { Output.line("\(drill.id): driving route \(route.name) for \(self.length), faults: \(schedule.faults.isEmpty ? "none" : self.faults)") }
            report = try await drill.run()
        } catch {
            FileHandle.standardError.write(Data("sky drill: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        if let reportFile {
            try Data(JSONWriter.string(report.json).utf8).write(to: URL(fileURLWithPath: reportFile))
        }
        Output.line(self.json ? JSONWriter.string(report.json) : report.text)
        if !report.passed { throw ExitCode(1) }
    }

    /// The route's file in `--routes`, else the route pushed to the registry.
    /// - Throws: the file's parse error (file and line), or ``DrillError`` when neither has it.
    private func loadRoute(registry: any Registry) async throws -> Route {
        let path = "\(self.routes)/\(self.route).yaml"
        if FileManager.default.fileExists(atPath: path) { return try RouteParser.parseFile(atPath: path) }
        if let stored = try await registry.storedRoutes().first(where: { $0.name == self.route }) {
            return try RouteParser.parse(yaml: stored.yaml, file: stored.file)
        }
        throw DrillError(.badLoad, "no route '\(self.route)': not in \(path), nor pushed to the registry")
    }
}

extension Error {
    /// A ``DrillError``'s message alone; any other error as it describes itself.
    fileprivate var message: String { (self as? DrillError)?.message ?? "\(self)" }
}
