import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Subprocess
import Testing
import RegistryKit

/// `sky cli` in a real terminal: tmux runs it, types into it (send-keys) and reads the screen
/// (capture-pane), as a person at the keyboard would.
@Suite(.timeLimit(.minutes(2)))
struct CLITests {
    /// One tmux server of the test's own (its own socket), running one window.
    struct Tmux {
        let socket = "sky-test-\(UUID().uuidString.prefix(8))"
        let session = "cli"

        /// Runs `tmux ARGUMENTS` to its end, started by swift-subprocess as the daemon starts
        /// its programs: with a clean signal mask, which the tmux server it forks inherits.
        @discardableResult
        func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            let result = try await Subprocess.run(
                .name("tmux"), arguments: Arguments(["-L", self.socket] + arguments), output: .string(limit: 1 << 20), error: .combinedWithOutput
            )
            let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
            return (status, result.standardOutput)
        }

        func start(_ command: String, in directory: String) async throws {
            let started = try await self.run(["new-session", "-d", "-s", self.session, "-x", "200", "-y", "60", "-c", directory, command])
            guard started.status == 0 else { throw E2EError("tmux new-session failed: \(started.output)") }
        }

        /// Keys as tmux names them: text, `Tab`, `Enter`, `Up`, `C-d` …
        func send(_ keys: String...) async throws {
            try await self.run(["send-keys", "-t", self.session] + keys)
        }

        /// The screen and its scrollback, as text.
        func screen() async throws -> String {
            try await self.run(["capture-pane", "-p", "-J", "-S", "-200", "-t", self.session]).output
        }

        /// Expects the screen to show `text` (`count` times) within a deadline, not after a sleep.
        func expect(_ text: String, count: Int = 1, within seconds: Double = 15, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            var screen = ""
            let seen = try await eventually(within: seconds) {
                screen = try await self.screen()
                return screen.components(separatedBy: text).count > count
            }
            #expect(seen, "the screen does not show \"\(text)\":\n\(screen)", sourceLocation: sourceLocation)
        }

        func kill() async {
            _ = try? await self.run(["kill-server"])
        }
    }

    @Test func aFilterListCompletionHistoryAndCtrlDInARealTerminal() async throws {
        let scratch = try Scratch()
        let run = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry], name: "run", directory: scratch.path)
        defer { run.signal(SIGKILL) }
        _ = try await run.waitForWord(after: "HTTP       http://")
        let registry = try await scratch.openRegistry()
        let uppercase = try #require(try await registry.nodes(matching: NodeQuery(service: "uppercase")).first)

        let tmux = Tmux()
        defer { Task { await tmux.kill() } }
        let shell = "SKYNET_REGISTRY='\(scratch.registry)' SKYNET_HISTORY='\(scratch.path)/history' '\(SkyProcess.binary)' cli; echo CLI-EXITED status=$?; sleep 60"
        try await tmux.start(shell, in: scratch.path)
        try await tmux.expect("sky> ")

        // Tab completes a service name the registry knows; the filter persists in the prompt.
        try await tmux.send("filter service=upp", "Tab")
        try await tmux.expect("filter service=uppercase")
        try await tmux.send("Enter")
        try await tmux.expect("sky [service=uppercase]> ")

        // A later command uses the filter: only uppercase is listed.
        try await tmux.send("nodes", "Enter")
        try await tmux.expect(Identifiers.short(uppercase.id))
        let listed = try await tmux.screen()
        #expect(!listed.contains("reverse") && !listed.contains("wordcount"), "\(listed)")

        // An admin command through the shell, with a completed flag.
        try await tmux.send("unreg", "Tab", "--dry", "Tab", "Enter")
        try await tmux.expect("would unregister 1 node (service=uppercase)")
        try await tmux.send("unregister", "Enter")
        try await tmux.expect("unregistered  uppercase")
        #expect(try await registry.nodes(matching: NodeQuery(service: "uppercase")).first?.status == .unregistered)
        try await tmux.send("register", "Enter")
        try await tmux.expect("registered  uppercase", count: 2)
        #expect(try await registry.nodes(matching: NodeQuery(service: "uppercase")).first?.status == .ready)

        // help, and history: Up brings back the last command.
        try await tmux.send("help", "Enter")
        try await tmux.expect("Filter keys: service, version, region, host, kind. The filter now: service=uppercase.")
        try await tmux.send("Up")
        try await tmux.expect("sky [service=uppercase]> help", count: 2)
        try await tmux.send("C-u", "C-d")
        try await tmux.expect("CLI-EXITED status=0")
        let history = try String(contentsOfFile: scratch.path + "/history", encoding: .utf8)
        #expect(history.contains("unregister") && history.contains("help"), "\(history)")
    }

    @Test func linesFromAPipeRunTheSameCommands() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let registry = try await scratch.openRegistry()
        try await registry.register(NodeRecord(kind: .service, service: "greet", region: "eu", address: "127.0.0.1:9", pid: 0, status: .ready, ttl: 3600))
        try await registry.register(NodeRecord(kind: .service, service: "other", region: "us", address: "127.0.0.1:10", pid: 0, status: .ready, ttl: 3600))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: SkyProcess.binary)
        process.arguments = ["cli", "--registry", scratch.registry]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("filter region=eu\nservices\nstop --dry-run\nbogus\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(try await process.exitStatus(timeout: 30) == 0)
        #expect(text.contains("filter: region=eu") && text.contains("greet") && !text.contains("other"), "\(text)")
        #expect(text.contains("would stop 1 node (region=eu)"), "\(text)")
        #expect(text.contains("unknown command 'bogus'"), "\(text)")
    }
}
