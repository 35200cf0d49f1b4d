import Foundation

/// A process on this machine that the drill has shown to be part of the cluster: it listens on
/// the address its registry record (or the route) names. Only such processes are faulted.
public struct LocalProcess: Sendable, Hashable {
    /// Its process id.
    public var pid: Int32
    /// The address it was found by.
    public var address: String

    /// How to start it again, read before it is stopped.
    public struct Launch: Sendable {
        /// The program (`/proc/PID/exe`, or its `argv[0]` when the file was replaced since).
        var executable: String
        /// Its arguments, without `argv[0]`.
        var arguments: [String]
        /// Its environment.
        var environment: [String: String]
        /// Its working folder.
        var directory: String
    }

    /// The process with id `pid` when it listens on `address`'s port in this network
    /// namespace; `nil` when it does not (another machine's process, a pid reused).
    public static func verified(pid: Int32, address: String) -> LocalProcess? {
        guard pid > 0, let port = Self.port(of: address) else { return nil }
        return Self.listeningInodes(port: port).isDisjoint(with: Self.socketInodes(of: pid)) ? nil : LocalProcess(pid: pid, address: address)
    }

    /// The process listening on `address`'s port here, when there is one and it can be seen.
    public static func listening(on address: String) -> LocalProcess? {
        guard let port = Self.port(of: address) else { return nil }
        let inodes = Self.listeningInodes(port: port)
        guard !inodes.isEmpty else { return nil }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.first { !inodes.isDisjoint(with: Self.socketInodes(of: $0)) }.map { LocalProcess(pid: $0, address: address) }
    }

    /// Whether the process is still there (and not a zombie).
    public var isAlive: Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(self.pid)/stat", encoding: .utf8),
            let close = status.lastIndex(of: ")") else { return false }
        return !status[status.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// How to start it again: read from `/proc` while it runs.
    public func launch() -> Launch? {
        guard let command = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(self.pid)/cmdline")),
            let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(self.pid)/environ")),
            let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(self.pid)/cwd")
        else { return nil }
        let words = command.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }.dropLast()
        guard let first = words.first else { return nil }
        var executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(self.pid)/exe")) ?? first
        if executable.hasSuffix(" (deleted)") { executable = first.hasPrefix("/") ? first : directory + "/" + first }
        var environment: [String: String] = [:]
        for pair in environ.split(separator: 0) {
            let text = String(decoding: pair, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return Launch(executable: executable, arguments: Array(words.dropFirst()), environment: environment, directory: directory)
    }

    /// Sends `signal`; `false` when the process is gone.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool { kill(self.pid, signal) == 0 }

    /// Starts `launch` again, in its own session so it outlives the drill (it is the cluster's
    /// process, not the drill's), its output appended to `log`.
    /// - Returns: the new process's id.
    static func start(_ launch: Launch, log: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launch.executable)
        process.arguments = launch.arguments
        process.environment = launch.environment
        process.currentDirectoryURL = URL(fileURLWithPath: launch.directory)
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process.processIdentifier
    }

    /// The port of `HOST:PORT` (also `[::1]:PORT`).
    static func port(of address: String) -> Int? {
        var text = Substring(address)
        if let scheme = text.range(of: "://") { text = text[scheme.upperBound...] }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        return Int(text[text.index(after: colon)...])
    }

    /// The inodes of TCP sockets listening on `port` (IPv4 and IPv6) in this network namespace.
    static func listeningInodes(port: Int) -> Set<String> {
        var inodes: Set<String> = []
        let hexPort = String(format: "%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // local_address is field 1 (ADDR:PORT in hex), st is field 3 (0A: LISTEN), inode field 9.
                guard fields.count > 9, fields[3] == "0A", fields[1].hasSuffix(":" + hexPort) else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        return inodes
    }

    /// The inodes of the sockets `pid` holds open.
    static func socketInodes(of pid: Int32) -> Set<String> {
        let folder = "/proc/\(pid)/fd"
        var inodes: Set<String> = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + name), target.hasPrefix("socket:[") else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        return inodes
    }
}
