import ArgumentParser
import Foundation
import SkyLib

/// `sky route check FILE...`: validates route files without running anything.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Work with route files.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate route files (or folders of them); print FILE:LINE:COLUMN: reason for each problem and exit 1 if any."
        )

        @Argument(help: "Route files or folders.")
        var paths: [String]

        func run() async throws {
            var files: [String] = []
            for path in self.paths {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    Output.line("\(path): no such file or folder")
                    throw ExitCode(1)
                }
                if isDirectory.boolValue {
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                    files += names.sorted().filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }
                        .map { (path as NSString).appendingPathComponent($0) }
                } else {
                    files.append(path)
                }
            }
            var failed = false
            var seen: [String: String] = [:]
            for file in files {
                do {
                    let route = try RouteParser.parseFile(atPath: file)
                    if let other = seen[route.name] {
                        Output.line("\(file):1: duplicate route name '\(route.name)': already defined in \(other)")
                        failed = true
                        continue
                    }
                    seen[route.name] = file
                    let steps = route.steps.map { $0.isAsync ? "\($0.service) (async)" : $0.service }.joined(separator: " → ")
                    Output.line("ok  \(file): route '\(route.name)': \(steps)")
                } catch {
                    Output.line("\(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
