public import Foundation

/// Other people's programs (curl, promtool …) run from in-process tests.
public enum Programs {
    /// Runs `executable` without blocking a thread of the cooperative pool, where an in-process
    /// server's handlers run too (blocking one with `waitUntilExit` on a two-core machine
    /// starved the server the program was talking to): its output goes to a file and its exit is
    /// awaited through `terminationHandler`. Returns the exit status and the output (standard
    /// output and error together).
    public static func run(_ executable: String, _ arguments: [String], input: Data? = nil) async throws -> (status: Int32, output: Data) {
        let base = NSTemporaryDirectory() + "sky-program-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".in")
        }
        _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: base + ".in", contents: input ?? Data())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: base + ".in"))
        let exited = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exited.continuation.finish() }
        try process.run()
        for await _ in exited.stream {}
        return (process.terminationStatus, FileManager.default.contents(atPath: base + ".out") ?? Data())
    }

    /// One HTTP exchange as curl saw it: status, headers (names lower-cased) and body.
    public struct Answer: Sendable {
        /// The status code.
        public var status: Int
        /// The headers, by lower-cased name.
        public var headers: [String: String]
        /// The body as text.
        public var body: String
    }

    /// curl did not get an answer (refused, timed out) or printed something that is not one.
    public struct CurlFailed: Error, CustomStringConvertible {
        /// What curl was asked and what it said.
        public var description: String
    }

    /// `curl -i` to `url` with `method` and any more `arguments` (headers, `-u`), within 10 s.
    public static func curl(_ url: String, method: String = "GET", _ arguments: [String] = []) async throws -> Answer {
        let (status, data) = try await Self.run("/usr/bin/curl", ["-s", "-i", "--max-time", "10", "-X", method] + arguments + [url])
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard status == 0, statusLine.count >= 2, let code = Int(statusLine[1]) else {
            throw CurlFailed(description: "curl \(method) \(url) exited \(status) with \(text.debugDescription)")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: code, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
