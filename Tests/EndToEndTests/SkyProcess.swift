import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SkyLib
import RouteModel
import SkyTestSupport
import Testing
import RegistryKit
import RegistryMongo
import RegistrySQLite

/// The real `sky` binary, run as a child process with its output captured.
///
/// Found through `SKY_BIN` (the Makefile sets it) or next to the test build.
final class SkyProcess: @unchecked Sendable {
    // @unchecked: `Process` is not Sendable; it is only touched through the lock-free calls
    // below (signal, isRunning, terminationStatus), which Foundation makes thread-safe.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SKY_BIN"], !path.isEmpty {
            // Absolute, so it also works from another directory (a tmux window, a scratch folder).
            return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath + "/")).standardizedFileURL.path
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sky").path
    }

    let process = Process()
    let name: String
    let stderrPath: String
    private let output = Locked<[String]>([])
    private let partial = Locked<String>("")

    /// Starts `sky ARGUMENTS` (or `executable ARGUMENTS`: a Python helper, say) in
    /// `directory`; inside host `host` of `hosts` when given (its pid is still sky's: `ip
    /// netns exec` execs it).
    init(
        _ arguments: [String], name: String? = nil, directory: String, environment: [String: String] = [:], on hosts: Hosts? = nil, host: String? = nil,
        executable: String? = nil
    ) throws {
        self.name = name ?? arguments.first ?? "sky"
        self.stderrPath = directory + "/\(self.name)-\(UUID().uuidString.prefix(6)).stderr.log"
        _ = FileManager.default.createFile(atPath: self.stderrPath, contents: nil)
        var command = [executable ?? Self.binary] + arguments
        if let hosts, let host { command = hosts.command(host, command) }
        self.process.executableURL = URL(fileURLWithPath: command[0])
        self.process.arguments = Array(command.dropFirst())
        self.process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SKYNET_REGISTRY")
        env.removeValue(forKey: "SKYNET_TOKEN")
        for (key, value) in environment { env[key] = value }
        self.process.environment = env
        let pipe = Pipe()
        self.process.standardOutput = pipe
        self.process.standardError = FileHandle(forWritingAtPath: self.stderrPath)
        pipe.fileHandleForReading.readabilityHandler = { [output, partial] handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            let lines = partial.withLock { partial -> [String] in
                partial += text
                var lines = partial.components(separatedBy: "\n")
                partial = lines.removeLast()
                return lines
            }
            output.withLock { $0.append(contentsOf: lines) }
        }
        try self.process.run()
    }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    var pid: Int32 { self.process.processIdentifier }

    /// Everything the process printed on standard output so far.
    var stdoutLines: [String] { self.output.withLock { $0 } }

    /// Its standard error (logs) so far.
    var stderr: String { (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for a line on standard output that `match` accepts and answers what it returned.
    func waitForLine<T>(timeout: Double = 30, _ match: (String) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            for line in self.stdoutLines { if let value = match(line) { return value } }
            if !self.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        for line in self.stdoutLines { if let value = match(line) { return value } }
        throw E2EError("\(self.name) printed no expected line in \(timeout)s; exited: \(!self.process.isRunning)\nstdout:\n\(self.stdoutLines.joined(separator: "\n"))\nstderr:\n\(self.stderr.suffix(3000))")
    }

    /// The text after `marker` on the first stdout line that has it, up to the next space.
    func waitForWord(after marker: String, timeout: Double = 30) async throws -> String {
        try await self.waitForLine(timeout: timeout) { line in
            guard let range = line.range(of: marker) else { return nil }
            return line[range.upperBound...].split(separator: " ").first.map(String.init)
        }
    }

    func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }

    /// Waits for the process to exit and answers its status.
    func waitForExit(timeout: Double = 20) async throws -> Int32 {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while self.process.isRunning {
            guard ContinuousClock.now < deadline else { throw E2EError("\(self.name) did not exit in \(timeout)s") }
            try await Task.sleep(for: .milliseconds(25))
        }
        return self.process.terminationStatus
    }
}

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// HTTP helpers over a real client.
enum HTTP {
    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var text: String
        var json: JSONValue { (try? JSONParser.parse(self.text)) ?? .string("not JSON: \(self.text)") }
    }

    static func post(_ url: String, _ body: String, headers: [(String, String)] = [], timeout: Int64 = 10) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await self.send(request, timeout: timeout)
    }

    static func get(_ url: String) async throws -> Answer {
        try await self.send(HTTPClientRequest(url: url), timeout: 10)
    }

    static func send(_ request: HTTPClientRequest, timeout: Int64) async throws -> Answer {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, text: String(buffer: body))
    }
}

/// A scratch folder for one test: routes, drop folders, registry file, logs.
struct Scratch {
    let path: String
    /// `sqlite` (a file in the scratch folder) or `mongodb` (a fresh database on the test server).
    let backend: String
    let database = "sky_e2e_\(UUID().uuidString.prefix(8).lowercased())"

    init(copyingRoutes: Bool = true, backend: String = "sqlite") throws {
        self.backend = backend
        self.path = NSTemporaryDirectory() + "sky-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: self.path + "/Routes", withIntermediateDirectories: true)
        if copyingRoutes {
            let repoRoutes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Routes").path
            for name in try FileManager.default.contentsOfDirectory(atPath: repoRoutes) where name.hasSuffix(".yaml") {
                try FileManager.default.copyItem(atPath: repoRoutes + "/" + name, toPath: self.path + "/Routes/" + name)
            }
        }
    }

    var registry: String {
        if self.backend == "mongodb" {
            let server = ProcessInfo.processInfo.environment["SKYNET_TEST_MONGODB"] ?? "mongodb://127.0.0.1:27017"
            return "\(server)/\(self.database)"
        }
        return "sqlite:\(self.path)/registry.sqlite"
    }

    /// Writes a route file the way editors save: a temporary file renamed over the old one.
    func writeRoute(_ name: String, _ yaml: String) throws {
        let temporary = self.path + "/Routes/.\(name).tmp"
        try yaml.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, self.path + "/Routes/\(name)") == 0 else { throw E2EError("rename failed") }
    }

    func openRegistry() async throws -> any Registry {
        if self.backend == "mongodb" { return try await MongoRegistry(uri: self.registry) }
        return try SQLiteRegistry(path: self.path + "/registry.sqlite")
    }
}


extension Process {
    /// Waits for the process without blocking a thread of the test's cooperative pool.
    func exitStatus(timeout: Double = 120) async throws -> Int32 {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while self.isRunning {
            guard ContinuousClock.now < deadline else { throw E2EError("\(self.executableURL?.lastPathComponent ?? "process") did not exit in \(timeout)s") }
            try await Task.sleep(for: .milliseconds(25))
        }
        return self.terminationStatus
    }
}

/// Other programs the tests run to their end (curl, dig, openssl, `sky` one-shot commands).
enum Command {
    /// Runs `arguments[0]` with the rest, no input, to its end: its exit status and its
    /// output (standard output and error together).
    static func run(_ arguments: [String], timeout: Double = 30) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let status = try await process.exitStatus(timeout: timeout)
        return (status, String(decoding: data, as: UTF8.self))
    }
}
