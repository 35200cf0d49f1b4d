import Foundation
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit

/// `sky generate`: a Swift and a Python service, generated into a temporary folder, each
/// passes its own tests, runs as its own process on one registry, and serves in one route.
@Suite(.timeLimit(.minutes(20)))
struct GenerateTests {
    /// Runs a command to the end, its output kept in a log file for failure messages.
    func run(_ executable: String, _ arguments: [String], in directory: String, timeout: Double = 900) async throws -> (status: Int32, log: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let logPath = directory + "/.\(UUID().uuidString.prefix(6)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        let status = try await process.exitStatus(timeout: timeout)
        return (status, (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }

    /// Starts a generated service (with `environment` added to ours) and answers it with its address.
    func start(_ executable: String, _ arguments: [String], name: String, in directory: String, environment: [String: String] = [:]) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let outPath = directory + "/.\(name).out"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: directory + "/.\(name).err")
        try process.run()
        var address: String?
        _ = await eventually(within: 60) {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: " ready at ") { address = text[range.upperBound...].split(separator: " ").first.map(String.init) }
            return address != nil
        }
        guard let address else { throw E2EError("\(name) did not say it was ready: \((try? String(contentsOfFile: directory + "/.\(name).err", encoding: .utf8)) ?? "")") }
        return (process, address)
    }

    /// The build folder `sky` was built in (the one holding `workspace-state.json` above
    /// `SKY_BIN`), or `nil` when there is none.
    ///
    /// The generated Swift package builds into it: its dependencies (SwiftNIO, swift-crypto's
    /// BoringSSL, GRDB …) are built there already, and a build folder of its own took five of
    /// the suite's sixteen minutes to build them again. `--ignore-lock` because `swift test`
    /// holds that folder's lock while the tests run, and builds nothing meanwhile. The main
    /// package's next `swift build` then re-resolves and recompiles a few modules (seconds).
    static var sharedBuildFolder: String? {
        var folder = URL(fileURLWithPath: SkyProcess.binary).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("workspace-state.json").path) { return folder.path }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    @Test func generatedSwiftAndPythonServicesWorkTogetherInOneRoute() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let sky = SkyProcess.binary
        let environment = ["SKYNET_HOME": URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path]

        // Generate both; names are checked and folders never overwritten silently.
        var generate = try SkyProcess(["generate", "service", "greet-py", "--lang", "python"], name: "gen-py", directory: scratch.path, environment: environment)
        #expect(try await generate.waitForExit() == 0)
        generate = try SkyProcess(["generate", "service", "greet-swift", "--lang", "swift"], name: "gen-swift", directory: scratch.path, environment: environment)
        #expect(try await generate.waitForExit() == 0)
        let again = try SkyProcess(["generate", "service", "greet-py", "--lang", "python"], name: "gen-again", directory: scratch.path)
        #expect(try await again.waitForExit() != 0)
        let keyword = try SkyProcess(["generate", "service", "struct"], name: "gen-keyword", directory: scratch.path)
        #expect(try await keyword.waitForExit() != 0)
        let route = try SkyProcess(["generate", "route", "both", "--steps", "greet-swift,greet-py"], name: "gen-route", directory: scratch.path)
        #expect(try await route.waitForExit() == 0)
        let check = try SkyProcess(["route", "check", "Routes/both.yaml"], name: "check", directory: scratch.path)
        #expect(try await check.waitForExit() == 0)

        // Each passes its own tests.
        let python = "/usr/bin/python3"
        let pyTests = try await self.run(python, ["-m", "unittest", "test_greet_py"], in: scratch.path + "/greet-py")
        #expect(pyTests.status == 0, "python tests: \(pyTests.log.suffix(2000))")
        let swiftFolder = scratch.path + "/greet-swift"
        let shared = Self.sharedBuildFolder.map { ["--scratch-path", $0, "--ignore-lock"] } ?? []
        let build = try await self.run("/usr/bin/env", ["swift", "build", "--build-tests"] + shared, in: swiftFolder)
        try #require(build.status == 0, "swift build: \(build.log.suffix(3000))")
        let swiftTests = try await self.run("/usr/bin/env", ["swift", "test", "--skip-build"] + shared, in: swiftFolder)
        #expect(swiftTests.status == 0, "swift tests: \(swiftTests.log.suffix(3000))")

        // Both run as processes on one registry, and one route goes through both.
        let (swiftService, swiftAddress) = try await self.start(
            (Self.sharedBuildFolder ?? swiftFolder + "/.build") + "/debug/greet-swift", ["--registry", scratch.registry, "--port", "0"], name: "greet-swift", in: swiftFolder
        )
        let (pyService, _) = try await self.start(
            python, ["greet_py.py", "--registry", scratch.registry, "--port", "0"], name: "greet-py", in: scratch.path + "/greet-py"
        )
        let router = try SkyProcess(["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "router", directory: scratch.path)
        let base = try await router.waitForWord(after: "router ready at ")
        let answer = try await HTTP.post("\(base)/routes/both", #"{"text":"hi"}"#, headers: [("Skynet-Trace", "1")])
        #expect(answer.status == 200)
        #expect(answer.json == ["text": "hi", "handledBy": "greet-py"])
        // The Python service's time joins the trace through its Server-Timing header.
        let traceID = answer.headers.first(name: "Skynet-Trace-Id") ?? ""
        let traced = await eventually(within: 10) {
            let spans = (try? await scratch.openRegistry().spans(traceID: traceID)) ?? []
            return spans.contains { $0.kind == .service && $0.name == "greet-py" && $0.duration > 0 }
                && spans.filter { $0.kind == .call }.map(\.name).sorted() == ["greet-py", "greet-swift"]
        }
        #expect(traced, "trace \(traceID) lacks the Python service's span")
        #expect(try await HTTP.get("http://\(swiftAddress)/debug/vars").json["greet-swift-processed"] == 1)
        let registry = try await scratch.openRegistry()
        #expect(Set(try await registry.nodes(matching: NodeQuery(kind: .service)).map(\.service)) == ["greet-swift", "greet-py"])

        // The Python service takes remote commands like a sky process: out of rotation and back,
        // then a stop that drains and deregisters it.
        for (verb, status) in [("unregister", NodeStatus.unregistered), ("register", .ready)] {
            let command = try SkyProcess([verb, "--service", "greet-py", "--registry", scratch.registry], name: verb, directory: scratch.path)
            #expect(try await command.waitForExit() == 0, "\(verb): \(command.stdoutLines)")
            #expect(try await registry.nodes(matching: NodeQuery(service: "greet-py")).first?.status == status)
        }
        let stop = try SkyProcess(["stop", "--service", "greet-py", "--registry", scratch.registry], name: "stop", directory: scratch.path)
        #expect(try await stop.waitForExit() == 0, "stop: \(stop.stdoutLines)")
        #expect(try await pyService.exitStatus(timeout: 20) == 0)
        #expect(try await registry.events(limit: 50).contains { $0.kind == "deregistered" && $0.service == "greet-py" && $0.message.contains("stop by command") })

        // The Swift one drains and deregisters on SIGTERM.
        kill(swiftService.processIdentifier, SIGTERM)
        #expect(try await swiftService.exitStatus(timeout: 20) == 0)
        router.signal(SIGTERM)
        #expect(try await router.waitForExit() == 0)
        #expect(try await registry.nodes(matching: NodeQuery(kind: .service)).isEmpty)
        _ = sky
    }
}
