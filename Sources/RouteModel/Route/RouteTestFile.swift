public import SkyLib
import Yams

/// A route test file (`NAME.test.yaml` beside the routes, run by `sky route test`): cases that
/// each give an input, the answers every service gives (by service, one per call, in order),
/// and the expected final document or error.
///
/// ```yaml
/// route: text
/// cases:
///   - name: shouts and counts
///     input: { text: "hi there" }
///     services:
///       uppercase: [ { text: "HI THERE" } ]
///       wordcount: [ { error: unavailable }, { text: "HI THERE", words: 2 } ]
///     expect: { text: "HI THERE", words: 2 }      # or expectError: step_failed
/// ```
///
/// An answer that is an object with `error` (and optionally `message`, `retryable`) and no
/// other key is a failure with that code; anything else is the service's output.
public struct RouteTestFile: Sendable, Equatable {
    /// One case.
    public struct Case: Sendable, Equatable {
        /// Its name, for the report.
        public var name: String
        /// Its line in the file.
        public var line: Int
        /// The request's document.
        public var input: JSONValue
        /// Answers by service, one per call, in order.
        public var services: [String: [Answer]]
        /// The final document expected, when the route should succeed.
        public var expect: JSONValue?
        /// The error code expected, when it should fail.
        public var expectError: String?
    }

    /// A scripted answer.
    public enum Answer: Sendable, Equatable {
        /// The service's output.
        case output(JSONValue)
        /// A failure: its code, message and whether a retry may help.
        case failure(code: String, message: String, retryable: Bool)
    }

    /// The file, as given.
    public var file: String
    /// The route the cases run.
    public var route: String
    /// The cases, in file order.
    public var cases: [Case]

    /// Codes whose failures are retryable unless the answer says `retryable: false`.
    public static let retryableCodes: Set<String> = ["unavailable", "connection_failed", "deadline_exceeded", "no_instance"]

    /// Whether a file name is a route test file.
    public static func isTestFile(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".test.yaml") || name.hasSuffix(".test.yml"))
    }

    /// Parses a test file; `file` is used in messages.
    /// - Throws: ``RouteFileError`` naming the file, line and reason.
    public static func parse(yaml: String, file: String) throws(RouteFileError) -> RouteTestFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw RouteFileError(file: file, line: nil, reason: "not valid YAML: \(error)")
        }
        guard let root else { throw RouteFileError(file: file, line: 1, reason: "file is empty; a route test needs 'route' and 'cases'") }
        let reader = RouteParser.Reader(file: file)
        let fields = try reader.mapping(root, what: "a route test file", allowed: ["route", "cases"])
        guard let routeNode = fields["route"] else { throw reader.fail(root, "missing 'route': the name of the route these cases run") }
        let route = try reader.string(routeNode, key: "route")
        guard let casesNode = fields["cases"], case .sequence(let items) = casesNode, !items.isEmpty else {
            throw reader.fail(fields["cases"] ?? root, "'cases' must be a non-empty list of cases")
        }
        var cases: [Case] = []
        for (index, item) in items.enumerated() {
            let body = try reader.mapping(item, what: "case \(index + 1)", allowed: ["name", "input", "services", "expect", "expectError"])
            let name = try body["name"].map { node throws(RouteFileError) in try reader.string(node, key: "name") } ?? "case \(index + 1)"
            guard let inputNode = body["input"] else { throw reader.fail(item, "case '\(name)' needs 'input': the request's document") }
            guard (body["expect"] == nil) != (body["expectError"] == nil) else {
                throw reader.fail(item, "case '\(name)' needs one of 'expect' (the final document) or 'expectError' (an error code)")
            }
            var services: [String: [Answer]] = [:]
            if let servicesNode = body["services"] {
                guard case .mapping(let mapping) = servicesNode else {
                    throw reader.fail(servicesNode, "'services' maps each service to its list of answers, one per call")
                }
                for (key, value) in mapping {
                    let service = try reader.string(key, key: "service")
                    guard case .sequence(let answers) = value else {
                        throw reader.fail(value, "answers of '\(service)' must be a list, one per call: [ {…}, {error: unavailable} ]")
                    }
                    var list: [Answer] = []
                    for answer in answers { list.append(try Self.answer(answer, reader: reader)) }
                    services[service] = list
                }
            }
            cases.append(Case(
                name: name, line: item.mark?.line ?? 0, input: try reader.json(inputNode), services: services,
                expect: try body["expect"].map { node throws(RouteFileError) in try reader.json(node) },
                expectError: try body["expectError"].map { node throws(RouteFileError) in try reader.string(node, key: "expectError") }
            ))
        }
        return RouteTestFile(file: file, route: route, cases: cases)
    }

    private static func answer(_ node: Node, reader: RouteParser.Reader) throws(RouteFileError) -> Answer {
        let value = try reader.json(node)
        guard case .object(let fields) = value, let code = fields["error"], Set(fields.keys).isSubset(of: ["error", "message", "retryable"]) else {
            return .output(value)
        }
        guard let code = code.stringValue, !code.isEmpty else { throw reader.fail(node, "'error' must be an error code, like unavailable or service_error") }
        var retryable = Self.retryableCodes.contains(code)
        if let flag = fields["retryable"] {
            guard case .bool(let given) = flag else { throw reader.fail(node, "'retryable' must be true or false") }
            retryable = given
        }
        return .failure(code: code, message: fields["message"]?.stringValue ?? "scripted \(code)", retryable: retryable)
    }
}
