import Foundation
public import Logging
import NIOCore
public import RegistryKit
import SkyLib
public import RouteModel

/// Runs route test files (``RouteTestFile``) against routes, with scripted services
/// (``ScriptedDispatcher``): the real executor, no network, and for `dedupe:` routes the
/// registry's dedupe role from `dedupe` (the `sky` tool gives an in-memory registry, fresh for
/// each case), so a dedupe route runs as a router runs it.
public struct RouteTestRunner: Sendable {
    /// One case's outcome.
    public struct Outcome: Sendable {
        /// `FILE:LINE`.
        public var location: String
        /// The case's name.
        public var name: String
        /// Whether it passed.
        public var passed: Bool
        /// Why not: what was expected and what came, line by line (a diff).
        public var details: [String]
        /// The time the case took on its virtual clock.
        public var elapsed: Duration = .zero
        /// Whether the case scripted faults (`sky route test` then prints its virtual time).
        public var faulted = false
    }

    /// The routes, by name.
    public let routes: [String: Route]
    private let dedupe: @Sendable () -> (any DedupeStore)?
    private let logger: Logger

    /// Creates a runner over `routes`.
    /// - Parameter dedupe: makes the dedupe store of one case (`nil`: dedupe routes run
    ///   without deduplicating).
    public init(
        routes: [Route], dedupe: @escaping @Sendable () -> (any DedupeStore)? = { nil },
        logger: Logger = Logger(label: "route-test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.routes = Dictionary(routes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.dedupe = dedupe
        self.logger = logger
    }

    /// Runs every case of `file`.
    public func run(_ file: RouteTestFile) async -> [Outcome] {
        var outcomes: [Outcome] = []
        for testCase in file.cases {
            let location = "\(file.file):\(testCase.line)"
            guard let route = self.routes[file.route] else {
                outcomes.append(Outcome(location: location, name: testCase.name, passed: false, details: ["no route named '\(file.route)' among the routes given"]))
                continue
            }
            outcomes.append(await self.run(testCase, route: route, location: location))
        }
        return outcomes
    }

    private func run(_ testCase: RouteTestFile.Case, route: Route, location: String) async -> Outcome {
        let table = RouteTable()
        table.install(route, file: location)
        // Every case on its own virtual clock: faults' delays and hangs, back-offs and deadlines
        // cost no real time, and come out the same each run.
        let clock = RouteClock.virtual()
        let start = clock.now()
        let dispatcher = ScriptedDispatcher(answers: testCase.services, faults: testCase.faults, clock: clock)
        var dedupe = self.dedupe()
        if let down = testCase.registryDown, let store = dedupe {
            dedupe = UnreachableDedupeStore(store: store, clock: clock, until: start + TimeAmount(down))
        }
        let executor = RouteExecutor(
            table: table, dispatcher: dispatcher, asyncSteps: AsyncStepQueue(limit: 16, logger: self.logger), counters: Counters(), dedupe: dedupe,
            clock: clock, logger: self.logger
        )
        let outcome: Result<RouteResult, SkyError>
        do {
            outcome = .success(try await executor.run(RequestEnvelope(route: route.name, payload: testCase.input)))
        } catch {
            outcome = .failure(error)
        }
        var details: [String] = []
        switch (outcome, testCase.expect, testCase.expectError) {
        case (.success(let result), let expected?, _):
            if result.payload != expected { details = Self.diff(expected: expected, actual: result.payload) }
        case (.success(let result), nil, let code?):
            details = ["expected error \(code), but the route answered \(JSONWriter.string(result.payload))"]
        case (.failure(let error), _?, _):
            details = ["expected a document, but the route failed: \(error.code) \(error.message)"]
        case (.failure(let error), nil, let code?):
            if error.code.description != code { details = ["expected error \(code), got \(error.code): \(error.message)"] }
        case (_, nil, nil):
            details = ["the case expects nothing"]
        }
        let elapsed = Duration.nanoseconds((clock.now() - start).nanoseconds)
        details += Self.checks(testCase, result: try? outcome.get(), calls: dispatcher.callCounts, elapsed: elapsed)
        var result = Outcome(location: location, name: testCase.name, passed: details.isEmpty, details: details, elapsed: elapsed)
        result.faulted = !testCase.faults.isEmpty || testCase.registryDown != nil
        return result
    }

    /// What a case states beyond its answer: the errors `errOnFail: false` steps recorded, the
    /// calls each service got, the most time it may take (on its virtual clock).
    static func checks(_ testCase: RouteTestFile.Case, result: RouteResult?, calls: [String: Int], elapsed: Duration) -> [String] {
        var details: [String] = []
        if let codes = testCase.expectErrors {
            let got = result?.errors.map(\.code) ?? []
            if got != codes { details.append("expected errors [\(codes.joined(separator: ", "))], got [\(got.joined(separator: ", "))]") }
        }
        for (service, expected) in (testCase.attempts ?? [:]).sorted(by: { $0.key < $1.key }) where calls[service, default: 0] != expected {
            details.append("expected \(expected) call(s) to \(service), got \(calls[service, default: 0])")
        }
        if let bound = testCase.elapsed, elapsed > bound {
            details.append("expected at most \(DurationParser.format(bound)), took \(DurationParser.format(elapsed)) (virtual time)")
        }
        return details
    }

    /// Line by line: `- KEY: expected` and `+ KEY: actual` for the keys of two objects that
    /// differ; the whole values otherwise.
    static func diff(expected: JSONValue, actual: JSONValue) -> [String] {
        guard case .object(let want) = expected, case .object(let got) = actual else {
            return ["- \(JSONWriter.string(expected))", "+ \(JSONWriter.string(actual))"]
        }
        var lines: [String] = []
        for key in Set(want.keys).union(got.keys).sorted() where want[key] != got[key] {
            if let value = want[key] { lines.append("- \(key): \(JSONWriter.string(value))") }
            if let value = got[key] { lines.append("+ \(key): \(JSONWriter.string(value))") }
        }
        return lines
    }
}
