import Foundation
import SkyLib
import Yams

/// What `sky daemon` runs on its host, from a small YAML file:
///
/// ```yaml
/// services:
///   - name: uppercase            # a built-in service, run as `sky service uppercase`
///     instances: 2
///     flags: ["--ttl", "2", "--heartbeat", "0.5"]
///   - name: greet                # any program: a command line
///     command: ["python3", "greet/greet.py", "--port", "0"]
///     instances: 1
/// ```
public struct DaemonConfiguration: Sendable, Hashable {
    /// One entry of `services:`: a program and how many copies of it run.
    public struct Program: Sendable, Hashable {
        /// The service's name (for built-ins, which one).
        public var name: String
        /// The command line; `nil` for a built-in service.
        public var command: [String]?
        /// How many copies run at once (default 1).
        public var instances: Int
        /// Extra flags for a built-in service (`sky service NAME FLAGS…`).
        public var flags: [String]

        /// Creates a `Program` from its parts.
        public init(name: String, command: [String]? = nil, instances: Int = 1, flags: [String] = []) {
            self.name = name
            self.command = command
            self.instances = instances
            self.flags = flags
        }
    }

    /// The programs, in file order.
    public var programs: [Program]

    /// Creates a `DaemonConfiguration` from its parts.
    public init(programs: [Program]) {
        self.programs = programs
    }

    /// Reads a daemon file.
    /// - Throws: ``SkyError`` (`configuration_error`) naming the file, line and field.
    public static func load(path: String) throws -> DaemonConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SkyError(.configuration, "\(path): cannot read the daemon file")
        }
        return try Self.parse(yaml: text, file: path)
    }

    /// Parses a daemon file's text; errors name `file` and the line.
    public static func parse(yaml: String, file: String) throws -> DaemonConfiguration {
        func fail(_ node: Node?, _ message: String) -> SkyError {
            let line = node?.mark.map { ":\($0.line)" } ?? ""
            return SkyError(.configuration, "\(file)\(line): \(message)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw SkyError(.configuration, "\(file): not valid YAML: \(error)")
        }
        guard let services = root?.mapping?["services"], let list = services.sequence, !list.isEmpty else {
            throw fail(root, "needs a non-empty list `services:`")
        }
        var programs: [Program] = []
        for item in list {
            guard let fields = item.mapping else { throw fail(item, "each service is a mapping with `name:`") }
            for key in fields.keys.compactMap(\.string) where !["name", "command", "instances", "flags"].contains(key) {
                throw fail(item, "unknown field `\(key)` (known: name, command, instances, flags)")
            }
            guard let name = fields["name"]?.string, !name.isEmpty else { throw fail(item, "a service needs `name:`") }
            var program = Program(name: name)
            if let command = fields["command"] {
                guard let words = command.sequence?.compactMap(\.string), !words.isEmpty, words.count == command.sequence?.count else {
                    throw fail(command, "`command:` of \(name) must be a list of strings, e.g. [\"python3\", \"svc.py\"]")
                }
                program.command = words
            }
            if let instances = fields["instances"] {
                guard let count = instances.int, (1...64).contains(count) else { throw fail(instances, "`instances:` of \(name) must be 1 to 64") }
                program.instances = count
            }
            if let flags = fields["flags"] {
                guard let words = flags.sequence?.compactMap(\.string), words.count == flags.sequence?.count else {
                    throw fail(flags, "`flags:` of \(name) must be a list of strings")
                }
                program.flags = words
            }
            programs.append(program)
        }
        return DaemonConfiguration(programs: programs)
    }
}
