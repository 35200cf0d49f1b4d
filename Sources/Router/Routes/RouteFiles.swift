import Foundation
import SkyLib
public import RouteModel

/// Route files named on the command line (files or folders), read and validated together,
/// for `sky route check` and `sky routes push`.
public struct RouteFiles: Sendable {
    /// A file that parsed.
    public struct Loaded: Sendable {
        /// The file's path as given.
        public var file: String
        /// The route it declares.
        public var route: Route
        /// The file's text, as pushed to the registry.
        public var yaml: String
    }

    /// The files that parsed, in path order.
    public var loaded: [Loaded] = []
    /// One line per problem, `FILE:LINE:COLUMN: reason`.
    public var problems: [String] = []

    /// Whether a folder entry is a route file: `*.yaml` or `*.yml`, not hidden (editors save
    /// through hidden temporary files).
    public static func isRouteFile(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && !RouteTestFile.isTestFile(name)
    }

    /// The route test files (`*.test.yaml`) among `paths`: files named directly, and those in
    /// folders, in path order.
    public static func testFiles(in paths: [String]) -> [String] {
        paths.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
            guard isDirectory.boolValue else { return RouteTestFile.isTestFile((path as NSString).lastPathComponent) ? [path] : [] }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            return names.sorted().filter(RouteTestFile.isTestFile).map { (path as NSString).appendingPathComponent($0) }
        }
    }

    /// Reads every path: a file, or a folder's route files (test files are left to
    /// ``testFiles(in:)``).
    public init(paths: [String]) {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                self.problems.append("\(path): no such file or folder")
                continue
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().filter(Self.isRouteFile)
                    .map { (path as NSString).appendingPathComponent($0) }
            } else if !RouteTestFile.isTestFile((path as NSString).lastPathComponent) {
                files.append(path)
            }
        }
        var seen: [String: String] = [:]
        for file in files {
            do {
                let yaml: String
                do {
                    yaml = try String(contentsOfFile: file, encoding: .utf8)
                } catch {
                    throw RouteFileError(file: file, line: nil, reason: "cannot read file: \(error.localizedDescription)")
                }
                let route = try RouteParser.parse(yaml: yaml, file: file)
                if let other = seen[route.name] {
                    throw RouteFileError(file: file, line: 1, reason: "duplicate route name '\(route.name)': already defined in \(other)")
                }
                seen[route.name] = file
                self.loaded.append(Loaded(file: file, route: route, yaml: yaml))
            } catch {
                self.problems.append("\(error)")
            }
        }
    }

    /// A route's steps on one line: `validate → uppercase → audit (async)`.
    public static func describe(_ route: Route) -> String {
        route.steps.map(\.outline).joined(separator: " → ")
    }
}
