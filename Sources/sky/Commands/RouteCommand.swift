import ArgumentParser
import Foundation
import Initiators
import NodeRuntime
import RegistryMemory
import RegistryKit
import Routing
import SkyLib
import RouteModel

/// `sky route check FILE...`: validates route files without running anything; `sky route test
/// DIR` runs their tests with scripted services.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Work with route files.",
        subcommands: [Check.self, Test.self]
    )

    /// `sky route check`: parses route files as a router would, without running anything; each
    /// route's worst case by its timeouts and retries, and with `--live`, steps whose service has
    /// no ready instance now.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate route files (or folders of them); print FILE:LINE:COLUMN: reason for each problem and exit 1 if any."
        )

        /// Files or folders, as a router takes them: a folder is checked as a router would load it,
        /// files on their own (for an editor's check on save).
        @Argument(help: "Route files or folders.")
        var paths: [String]

        /// Off by default, so a check runs in a build with no registry; on, it answers "would this
        /// route work now" before a push.
        @Flag(help: "Also ask the registry: say which steps name a service with no ready instance (of the version asked for), and exit 1 if any does.")
        var live = false

        @Option(help: "Registry address for --live (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).")
        var registry: String?

        /// Exit 1 when any file does not parse or, with `--live`, a step has no instance: a deploy
        /// script can stop on it.
        func run() async throws {
            let files = RouteFiles(paths: self.paths)
            let nodes = self.live ? try await RegistryAddress.resolve(flag: self.registry).open().nodes().filter { $0.isShownReady() } : []
            var missing = 0
            for loaded in files.loaded {
                let route = loaded.route
                Output.line("ok  \(loaded.file): route '\(route.name)': \(RouteFiles.describe(route))")
                Output.line("    worst case \(DurationParser.format(route.worstCase())) by its timeouts and retries (route timeout \(DurationParser.format(route.timeout ?? .seconds(30))))")
                for case .stomp(let stomp) in route.sources where stomp.deadLetter == nil {
                    Output.line("note \(loaded.file): stomp \(stomp.destination): \(StompInitiator.nackWarning)")
                }
                for case .stomp(let stomp) in route.sources where stomp.ack == .auto {
                    Output.line("note \(loaded.file): stomp \(stomp.destination): \(StompInitiator.autoAckWarning)")
                }
                guard self.live else { continue }
                for step in route.calls {
                    let instances = nodes.filter { $0.kind == .service && $0.service == step.service }
                    let selector = step.version.flatMap(VersionSelector.init)
                    guard !instances.contains(where: { selector?.matches($0.version) ?? true }) else { continue }
                    missing += 1
                    let versions = Set(instances.map(\.version)).sorted()
                    let wanted = step.version.map { " \($0)" } ?? ""
                    let found = versions.isEmpty ? "none ready at all" : "ready versions: \(versions.joined(separator: ", "))"
                    Output.line("live \(loaded.file):\(step.line ?? 1): step '\(step.service)\(wanted)' has no ready instance (\(found))")
                }
            }
            for problem in files.problems { Output.line(problem) }
            if !files.problems.isEmpty || missing > 0 { throw ExitCode(1) }
        }
    }

    /// `sky route test`: runs each test case through the real executor with scripted answers; no
    /// registry, services or network, so it runs in a build before anything is deployed.
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test",
            abstract: "Run route tests (*.test.yaml beside the routes) with scripted service answers; no registry or network. Exit 1 if any case fails.",
            discussion: """
                A test file names its route and lists cases: an input, the answers each service gives \
                (one per call, in order; {error: CODE} for a failure), and the expected final document \
                (expect) or error code (expectError). A case may script faults per service, applied \
                to its first calls before its answers (faults: {SERVICE: [{fail: CODE, times: N}, \
                {delay: 3s}, {reset: true}, {hang: true}], registry: [{down: 5s}]}), and state the \
                errors errOnFail: false steps record (expectErrors), the calls per service (attempts) \
                and the most time it may take (elapsed). Time runs on a virtual clock: a 30 s timeout \
                passes at once, the same way every run. Routes are read from the same folders or files.
                """
        )

        /// Test files are found beside the routes (`NAME.test.yaml`), so a route and its tests move
        /// together.
        @Argument(help: "Folders (or files) holding routes and their *.test.yaml files.")
        var paths: [String]

        /// Exit 1 when a case fails, a file does not parse, or there is no test at all (a test run
        /// that ran nothing must not pass).
        func run() async throws {
            let files = RouteFiles(paths: self.paths)
            for problem in files.problems { Output.line(problem) }
            var tests: [RouteTestFile] = []
            var broken = !files.problems.isEmpty
            for path in RouteFiles.testFiles(in: self.paths) {
                do {
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    tests.append(try RouteTestFile.parse(yaml: text, file: path))
                } catch let error as RouteFileError {
                    Output.line("\(error)")
                    broken = true
                } catch {
                    Output.line("\(path): cannot read file: \(error.localizedDescription)")
                    broken = true
                }
            }
            let runner = RouteTestRunner(routes: files.loaded.map(\.route), dedupe: { MemoryRegistry(name: "route-test") })
            var passed = 0, failed = 0
            for test in tests {
                for outcome in await runner.run(test) {
                    if outcome.passed {
                        passed += 1
                        Output.line("ok    \(outcome.location) \(outcome.name)" + (outcome.faulted ? " (\(DurationParser.format(outcome.elapsed)) virtual)" : ""))
                    } else {
                        failed += 1
                        Output.line("FAIL  \(outcome.location) \(outcome.name)")
                        for line in outcome.details { Output.line("      \(line)") }
                    }
                }
            }
            Output.line("\(passed) passed, \(failed) failed, in \(tests.count) test file(s)")
            if failed > 0 || broken || tests.isEmpty { throw ExitCode(1) }
        }
    }
}
