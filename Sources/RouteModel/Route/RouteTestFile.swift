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
        /// Faults by service, one per call (before its answers): see ``Fault``.
        public var faults: [String: [Fault]] = [:]
        /// How long the registry is unreachable from the case's start (`registry: [ {down: 5s} ]`).
        public var registryDown: Duration?
        /// The codes of the errors recorded by `errOnFail: false` steps, in order.
        public var expectErrors: [String]?
        /// Calls each service must have had.
        public var attempts: [String: Int]?
        /// The most the case may take on the virtual clock (the deadlines' bound).
        public var elapsed: Duration?

        /// Creates a `Case` from its parts.
        public init(
            name: String, line: Int, input: JSONValue, services: [String: [Answer]], expect: JSONValue?, expectError: String?,
            faults: [String: [Fault]] = [:], registryDown: Duration? = nil, expectErrors: [String]? = nil, attempts: [String: Int]? = nil,
            elapsed: Duration? = nil
        ) {
            self.name = name
            self.line = line
            self.input = input
            self.services = services
            self.expect = expect
            self.expectError = expectError
            self.faults = faults
            self.registryDown = registryDown
            self.expectErrors = expectErrors
            self.attempts = attempts
            self.elapsed = elapsed
        }
    }

    /// A scripted fault of one service call (`faults:`), used before the service's answers.
    public enum Fault: Sendable, Equatable {
        /// `{fail: CODE, times: N}`: the next N calls fail with CODE (retryable as answers are).
        case fail(code: String, retryable: Bool, times: Int)
        /// `{delay: 3s}`: the call takes this long, then gets the service's next answer; past
        /// the call's deadline it fails there with `deadline_exceeded`.
        case delay(Duration)
        /// `{reset: true}`: the instance dies mid-call; the connection is reset
        /// (`connection_failed`, retryable).
        case reset
        /// `{hang: true}`: the call never answers; it fails at its deadline.
        case hang
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
            let body = try reader.mapping(
                item, what: "case \(index + 1)", allowed: ["name", "input", "services", "faults", "expect", "expectError", "expectErrors", "attempts", "elapsed"]
            )
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
            var testCase = Case(
                name: name, line: item.mark?.line ?? 0, input: try reader.json(inputNode), services: services,
                expect: try body["expect"].map { node throws(RouteFileError) in try reader.json(node) },
                expectError: try body["expectError"].map { node throws(RouteFileError) in try reader.string(node, key: "expectError") }
            )
            if let node = body["faults"] { (testCase.faults, testCase.registryDown) = try Self.faults(node, reader: reader) }
            if let node = body["expectErrors"] {
                guard case .sequence(let codes) = node else { throw reader.fail(node, "'expectErrors' lists the codes errOnFail: false steps record, in order") }
                var list: [String] = []
                for code in codes { list.append(try reader.string(code, key: "expectErrors")) }
                testCase.expectErrors = list
            }
            if let node = body["attempts"] {
                guard case .mapping(let mapping) = node else { throw reader.fail(node, "'attempts' maps each service to the calls it must get") }
                var counts: [String: Int] = [:]
                for (key, value) in mapping {
                    let service = try reader.string(key, key: "service")
                    guard let count = Int(try reader.string(value, key: service)), count >= 0 else { throw reader.fail(value, "calls of '\(service)' must be a whole number") }
                    counts[service] = count
                }
                testCase.attempts = counts
            }
            testCase.elapsed = try body["elapsed"].map { node throws(RouteFileError) in try reader.duration(node, key: "elapsed") }
            cases.append(testCase)
        }
        return RouteTestFile(file: file, route: route, cases: cases)
    }

    /// A case's `faults:`: per service, a list of faults, one per call; `registry: [ {down: D} ]`.
    private static func faults(_ node: Node, reader: RouteParser.Reader) throws(RouteFileError) -> ([String: [Fault]], Duration?) {
        guard case .mapping(let mapping) = node else {
            throw reader.fail(node, "'faults' maps each service (or 'registry') to its faults, one per call: [ {fail: unavailable, times: 2}, {delay: 3s} ]")
        }
        var faults: [String: [Fault]] = [:]
        var registryDown: Duration?
        for (key, value) in mapping {
            let service = try reader.string(key, key: "service")
            guard case .sequence(let items) = value else { throw reader.fail(value, "faults of '\(service)' must be a list, one per call") }
            if service == "registry" {
                guard items.count == 1, let only = items.first else { throw reader.fail(value, "'registry' takes one fault: [ {down: 5s} ]") }
                let fields = try reader.mapping(only, what: "a registry fault", allowed: ["down"])
                guard let down = fields["down"] else { throw reader.fail(only, "a registry fault is {down: DURATION}") }
                registryDown = try reader.duration(down, key: "down")
                continue
            }
            var list: [Fault] = []
            for item in items {
                let fields = try reader.mapping(item, what: "a fault of '\(service)'", allowed: ["fail", "times", "retryable", "delay", "reset", "hang"])
                if let code = fields["fail"] {
                    let code = try reader.string(code, key: "fail")
                    let times = try fields["times"].map { node throws(RouteFileError) in try reader.positive(node, key: "times") } ?? 1
                    let retryable = try fields["retryable"].map { node throws(RouteFileError) in try reader.bool(node, key: "retryable") } ?? Self.retryableCodes.contains(code)
                    list.append(.fail(code: code, retryable: retryable, times: times))
                } else if let delay = fields["delay"] {
                    list.append(.delay(try reader.duration(delay, key: "delay")))
                } else if fields["reset"] != nil {
                    list.append(.reset)
                } else if fields["hang"] != nil {
                    list.append(.hang)
                } else {
                    throw reader.fail(item, "a fault is one of {fail: CODE, times: N}, {delay: DURATION}, {reset: true}, {hang: true}")
                }
            }
            faults[service] = list
        }
        return (faults, registryDown)
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
