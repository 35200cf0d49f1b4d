import SkyLib
import Foundation
import Yams

/// Reads route files (YAML) into validated ``Route`` values.
///
/// The YAML is composed into nodes, which keep their line and column, and every key and value is
/// checked by hand: an unknown key, a wrong type, a missing service or a bad duration is reported
/// as `FILE:LINE:COLUMN: reason`, never as a decoder's coding path.
public enum RouteParser {
    /// Characters allowed in route and service names (they appear in URLs and file names).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" || $0 == "." }
            && !name.hasPrefix(".")
    }

    /// Reads and parses the route file at `path`.
    /// - Throws: ``RouteFileError`` naming the file, line and reason.
    public static func parseFile(atPath path: String) throws(RouteFileError) -> Route {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RouteFileError(file: path, line: nil, reason: "cannot read file: \(error.localizedDescription)")
        }
        return try Self.parse(yaml: text, file: path)
    }

    /// Parses route YAML; `file` is used in messages only.
    /// - Throws: ``RouteFileError`` naming the file, line and reason.
    public static func parse(yaml: String, file: String) throws(RouteFileError) -> Route {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.fileError(from: error, file: file)
        } catch {
            throw RouteFileError(file: file, line: nil, reason: "not valid YAML: \(error)")
        }
        guard let root else {
            throw RouteFileError(file: file, line: 1, reason: "file is empty; a route needs at least 'name' and 'steps'")
        }
        return try Reader(file: file).route(root)
    }

    private static func fileError(from error: YamlError, file: String) -> RouteFileError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) (\($0.text) started at line \($0.mark.line))" } ?? problem
            return RouteFileError(file: file, line: mark.line, column: mark.column, reason: "not valid YAML: \(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return RouteFileError(
                file: file,
                line: context.mark.line,
                column: context.mark.column,
                reason: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in mapping"
            )
        case .reader(let problem, _, _, _):
            return RouteFileError(file: file, line: nil, reason: "not readable as YAML: \(problem)")
        default:
            return RouteFileError(file: file, line: nil, reason: "not valid YAML: \(error)")
        }
    }
}

extension RouteParser {
    /// Walks the composed YAML, checking as it goes.
    struct Reader {
        let file: String

        static let routeKeys = ["name", "description", "timeout", "from", "rate", "dedupe", "keepFailed", "steps"]
        static let stepKeys = ["service", "choice", "parallel", "when", "version", "async", "merge", "errOnFail", "retry", "timeout", "breaker", "rate"]
        static let conditionTests = ["equals", "in", "exists", "matches", "gt", "gte", "lt", "lte"]
        static let retryKeys = ["attempts", "backoff", "max"]
        static let sourceKinds = ["files", "csv", "stomp"]

        func fail(_ node: Node?, _ reason: String) -> RouteFileError {
            RouteFileError(file: self.file, line: node?.mark?.line, column: node?.mark?.column, reason: reason)
        }

        func route(_ root: Node) throws(RouteFileError) -> Route {
            let fields = try self.mapping(root, what: "a route", allowed: Self.routeKeys)
            guard let nameNode = fields["name"] else {
                throw self.fail(root, "missing 'name': every route needs a unique name")
            }
            let name = try self.string(nameNode, key: "name")
            guard RouteParser.isValidName(name) else {
                throw self.fail(nameNode, "route name '\(name)' may only use letters, digits, '-', '_' and '.'")
            }
            let description = try fields["description"].map { node throws(RouteFileError) in try self.string(node, key: "description") }
            let timeout = try fields["timeout"].map { node throws(RouteFileError) in try self.duration(node, key: "timeout") }
            let sources = try fields["from"].map { node throws(RouteFileError) in try self.sources(node) } ?? []
            guard let stepsNode = fields["steps"] else {
                throw self.fail(root, "missing 'steps': route '\(name)' needs at least one step")
            }
            guard case .sequence(let sequence) = stepsNode else {
                throw self.fail(stepsNode, "'steps' must be a list of steps (each '- service: NAME')")
            }
            guard !sequence.isEmpty else {
                throw self.fail(stepsNode, "'steps' is empty: route '\(name)' needs at least one step")
            }
            var steps: [RouteStep] = []
            for (index, node) in sequence.enumerated() {
                steps.append(try self.step(node, number: index + 1))
            }
            var route = Route(name: name, description: description, timeout: timeout, sources: sources, steps: steps)
            route.rate = try fields["rate"].map { node throws(RouteFileError) in try self.rate(node) }
            if let node = fields["dedupe"] {
                let dedupe = try self.mapping(node, what: "'dedupe'", allowed: ["key", "for"])
                guard let keyNode = dedupe["key"] else { throw self.fail(node, "'dedupe' needs 'key': the path of the request's id in its document, like order.id") }
                let text = try self.string(keyNode, key: "key")
                guard let path = DocumentPath(text) else { throw self.fail(keyNode, "bad path '\(text)': dotted names or indexes, like order.id") }
                var policy = DedupePolicy(key: path)
                if let windowNode = dedupe["for"] { policy.window = try self.duration(windowNode, key: "for") }
                route.dedupe = policy
            }
            if let node = fields["keepFailed"] { route.keepFailed = try self.bool(node, key: "keepFailed") }
            return route
        }

        /// `100/s`, `20/m`, `5/h`, `10/500ms`, or `{limit, per, burst}`.
        func rate(_ node: Node) throws(RouteFileError) -> RateLimit {
            if case .scalar(let scalar) = node {
                let parts = scalar.string.split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let units: [String: Duration] = ["s": .seconds(1), "m": .seconds(60), "h": .seconds(3600)]
                guard parts.count == 2, let limit = Int(parts[0]), (1...1_000_000).contains(limit),
                      let per = units[parts[1]] ?? DurationParser.parse(parts[1]), per > .zero
                else {
                    throw self.fail(node, "bad rate '\(scalar.string)' (use e.g. 100/s, 20/m, or { limit: 200, per: 1s, burst: 50 })")
                }
                return RateLimit(limit: limit, per: per)
            }
            let fields = try self.mapping(node, what: "'rate'", allowed: ["limit", "per", "burst"])
            guard let limitNode = fields["limit"] else { throw self.fail(node, "'rate' needs 'limit' (requests per 'per', 1 second unless given)") }
            guard let limit = self.int(limitNode), (1...1_000_000).contains(limit) else {
                throw self.fail(limitNode, "'limit' must be a whole number from 1 to 1000000")
            }
            var rate = RateLimit(limit: limit)
            if let node = fields["per"] { rate.per = try self.duration(node, key: "per") }
            if let burstNode = fields["burst"] {
                guard let burst = self.int(burstNode), (1...1_000_000).contains(burst) else {
                    throw self.fail(burstNode, "'burst' must be a whole number from 1 to 1000000")
                }
                rate.burst = burst
            }
            return rate
        }

        /// A list of steps under `choice:` or `parallel:`; `what` names it in messages.
        func steps(_ node: Node, what: String) throws(RouteFileError) -> [RouteStep] {
            guard case .sequence(let sequence) = node else {
                throw self.fail(node, "\(what) must be a list of steps (each '- service: NAME')")
            }
            guard !sequence.isEmpty else { throw self.fail(node, "\(what) is empty: give it at least one step") }
            var steps: [RouteStep] = []
            for (index, item) in sequence.enumerated() {
                steps.append(try self.step(item, number: index + 1, within: what))
            }
            return steps
        }

        func step(_ node: Node, number: Int, within: String? = nil) throws(RouteFileError) -> RouteStep {
            let label = within.map { "step \(number) of \($0)" } ?? "step \(number)"
            let fields = try self.mapping(node, what: label, allowed: Self.stepKeys)
            let kinds = ["service", "choice", "parallel"].filter { fields[$0] != nil }
            guard kinds.count <= 1 else {
                throw self.fail(node, "\(label) has \(kinds.map { "'\($0)'" }.joined(separator: " and ")): a step is one of service, choice or parallel")
            }
            let when = try fields["when"].map { node throws(RouteFileError) in try self.condition(node) }
            if let choiceNode = fields["choice"] {
                try self.only(fields, ["choice", "when"], in: label, kind: "choice")
                var step = try self.choice(choiceNode, label: label)
                step.when = when
                step.line = node.mark?.line
                return step
            }
            if let parallelNode = fields["parallel"] {
                try self.only(fields, ["parallel", "when", "errOnFail", "timeout"], in: label, kind: "parallel")
                var step = try self.parallel(parallelNode, label: label)
                step.when = when
                step.line = node.mark?.line
                if let node = fields["errOnFail"] { step.errOnFail = try self.bool(node, key: "errOnFail") }
                if let node = fields["timeout"] { step.timeout = try self.duration(node, key: "timeout") }
                return step
            }
            guard let serviceNode = fields["service"] else {
                throw self.fail(node, "\(label) has no 'service': name the service to call (or make it a 'choice' or 'parallel')")
            }
            let service = try self.string(serviceNode, key: "service")
            guard RouteParser.isValidName(service) else {
                throw self.fail(serviceNode, "service name '\(service)' may only use letters, digits, '-', '_' and '.'")
            }
            var step = RouteStep(service: service, line: node.mark?.line)
            if let versionNode = fields["version"] {
                let version = try self.string(versionNode, key: "version")
                guard !version.isEmpty, VersionSelector(version) != nil else {
                    throw self.fail(versionNode, "bad version selector '\(version)' (use e.g. 1.2.0, 1.*, *)")
                }
                step.version = version
            }
            if let node = fields["async"] { step.isAsync = try self.bool(node, key: "async") }
            if let node = fields["merge"] { step.merge = try self.bool(node, key: "merge") }
            if let node = fields["errOnFail"] { step.errOnFail = try self.bool(node, key: "errOnFail") }
            if let node = fields["timeout"] { step.timeout = try self.duration(node, key: "timeout") }
            if let node = fields["retry"] { step.retry = try self.retry(node) }
            if let node = fields["breaker"] { step.breaker = try self.breaker(node) }
            if let node = fields["rate"] { step.rate = try self.rate(node) }
            step.when = when
            if step.isAsync && step.merge, let node = fields["merge"] {
                throw self.fail(node, "\(label) (\(service)) is async, so its output is never awaited and cannot be merged")
            }
            return step
        }

        /// Refuses keys that do not apply to a `choice` or `parallel` step.
        func only(_ fields: [String: Node], _ allowed: [String], in label: String, kind: String) throws(RouteFileError) {
            if let key = fields.keys.sorted().first(where: { !allowed.contains($0) }), let node = fields[key] {
                throw self.fail(node, "'\(key)' does not apply to a '\(kind)' step (\(label)); it takes: \(allowed.joined(separator: ", "))")
            }
        }

        /// `choice: [ {when: COND, steps: [...]}, ..., {otherwise: [...]} ]`.
        func choice(_ node: Node, label: String) throws(RouteFileError) -> RouteStep {
            guard case .sequence(let items) = node, !items.isEmpty else {
                throw self.fail(node, "'choice' must be a list of '- when: CONDITION' branches (each with 'steps'), optionally ending with '- otherwise: [steps]'")
            }
            var branches: [ChoiceBranch] = []
            var otherwise: [RouteStep]?
            for (index, item) in items.enumerated() {
                let fields = try self.mapping(item, what: "a 'choice' branch", allowed: ["when", "steps", "otherwise"])
                if let otherwiseNode = fields["otherwise"] {
                    guard fields.count == 1 else { throw self.fail(item, "an 'otherwise' branch takes only its list of steps") }
                    guard index == items.count - 1 else { throw self.fail(item, "'otherwise' must be the last branch of a 'choice'") }
                    otherwise = try self.steps(otherwiseNode, what: "'otherwise' of \(label)")
                    continue
                }
                guard let whenNode = fields["when"] else { throw self.fail(item, "a 'choice' branch needs 'when' (or is the last, 'otherwise')") }
                guard let stepsNode = fields["steps"] else { throw self.fail(item, "a 'choice' branch needs 'steps'") }
                branches.append(ChoiceBranch(when: try self.condition(whenNode), steps: try self.steps(stepsNode, what: "branch \(index + 1) of the choice in \(label)")))
            }
            guard !branches.isEmpty else { throw self.fail(node, "'choice' needs at least one 'when' branch") }
            var step = RouteStep(service: "choice")
            step.action = .choice(branches, otherwise: otherwise)
            return step
        }

        /// `parallel: {join: merge|collect, branches: {NAME: [steps], ...}}`.
        func parallel(_ node: Node, label: String) throws(RouteFileError) -> RouteStep {
            let fields = try self.mapping(node, what: "'parallel'", allowed: ["join", "branches"])
            var join = ParallelStep.Join.merge
            if let joinNode = fields["join"] {
                let text = try self.string(joinNode, key: "join")
                guard let value = ParallelStep.Join(rawValue: text) else { throw self.fail(joinNode, "'join' must be merge or collect, not '\(text)'") }
                join = value
            }
            guard let branchesNode = fields["branches"], case .mapping(let mapping) = branchesNode, !mapping.isEmpty else {
                throw self.fail(fields["branches"] ?? node, "'parallel' needs 'branches': a mapping of branch names to lists of steps")
            }
            var branches: [ParallelBranch] = []
            for (keyNode, value) in mapping {
                let name = try self.string(keyNode, key: "branch name")
                guard RouteParser.isValidName(name) else { throw self.fail(keyNode, "branch name '\(name)' may only use letters, digits, '-', '_' and '.'") }
                branches.append(ParallelBranch(name: name, steps: try self.steps(value, what: "branch '\(name)' of \(label)")))
            }
            if let async = branches.flatMap(\.steps).first(where: \.isAsync) {
                throw self.fail(node, "branch steps are awaited by the join; '\(async.service)' is async: move it out of the parallel step")
            }
            var step = RouteStep(service: "parallel")
            step.action = .parallel(ParallelStep(join: join, branches: branches))
            return step
        }

        /// A condition: `{path, equals|in|exists|matches|gt|gte|lt|lte}`, `{all: [..]}`,
        /// `{any: [..]}` or `{not: COND}`.
        func condition(_ node: Node) throws(RouteFileError) -> Condition {
            let fields = try self.mapping(node, what: "a condition", allowed: ["path", "all", "any", "not"] + Self.conditionTests)
            if let combinator = ["all", "any", "not"].first(where: { fields[$0] != nil }) {
                guard fields.count == 1, let body = fields[combinator] else {
                    throw self.fail(node, "'\(combinator)' stands alone in its condition (put the other tests inside it)")
                }
                if combinator == "not" { return .not(try self.condition(body)) }
                guard case .sequence(let items) = body, !items.isEmpty else {
                    throw self.fail(body, "'\(combinator)' takes a non-empty list of conditions")
                }
                var conditions: [Condition] = []
                for item in items { conditions.append(try self.condition(item)) }
                return combinator == "all" ? .all(conditions) : .any(conditions)
            }
            guard let pathNode = fields["path"] else {
                throw self.fail(node, "a condition needs 'path' and one test (\(Self.conditionTests.joined(separator: ", "))), or 'all', 'any' or 'not'")
            }
            let text = try self.string(pathNode, key: "path")
            guard let path = DocumentPath(text) else { throw self.fail(pathNode, "bad path '\(text)': dotted names or indexes, like order.items.0.sku") }
            let tests = Self.conditionTests.filter { fields[$0] != nil }
            guard tests.count == 1, let test = tests.first, let value = fields[test] else {
                throw self.fail(node, tests.isEmpty
                    ? "condition on '\(text)' has no test: give one of \(Self.conditionTests.joined(separator: ", "))"
                    : "condition on '\(text)' has \(tests.count) tests (\(tests.joined(separator: ", "))): use 'all' to combine them")
            }
            switch test {
            case "equals": return .equals(path, try self.json(value))
            case "in":
                guard case .sequence(let items) = value else { throw self.fail(value, "'in' takes a list of values") }
                var values: [JSONValue] = []
                for item in items { values.append(try self.json(item)) }
                return .isIn(path, values)
            case "exists": return .exists(path, try self.bool(value, key: "exists"))
            case "matches":
                let pattern = try self.string(value, key: "matches")
                do {
                    return .matches(path, try Pattern(pattern))
                } catch {
                    throw self.fail(value, "bad regular expression '\(pattern)': \(error.localizedDescription)")
                }
            default:
                guard case .scalar(let scalar) = value, let bound = Double(scalar.string), bound.isFinite else {
                    throw self.fail(value, "'\(test)' takes a number")
                }
                return .compare(path, Condition.Comparison(rawValue: test)!, bound)
            }
        }

        /// A scalar or list or mapping from YAML, as JSON: plain scalars become numbers, booleans
        /// or null when they read as such, quoted ones stay strings.
        func json(_ node: Node) throws(RouteFileError) -> JSONValue {
            switch node {
            case .scalar(let scalar):
                if scalar.style == .plain {
                    if let int = Int64(scalar.string) { return .int(int) }
                    if let double = Double(scalar.string), double.isFinite { return .double(double) }
                    if scalar.string == "true" { return .bool(true) }
                    if scalar.string == "false" { return .bool(false) }
                    if scalar.string == "null" || scalar.string == "~" { return .null }
                }
                return .string(scalar.string)
            case .sequence(let items):
                var values: [JSONValue] = []
                for item in items { values.append(try self.json(item)) }
                return .array(values)
            case .mapping(let mapping):
                var fields: [String: JSONValue] = [:]
                for (key, value) in mapping { fields[try self.string(key, key: "key")] = try self.json(value) }
                return .object(fields)
            case .alias:
                throw self.fail(node, "aliases are not allowed in conditions")
            }
        }

        func breaker(_ node: Node) throws(RouteFileError) -> BreakerPolicy {
            let fields = try self.mapping(node, what: "'breaker'", allowed: ["failures", "coolDown"])
            var policy = BreakerPolicy()
            if let failuresNode = fields["failures"] {
                guard let failures = self.int(failuresNode), (1...1000).contains(failures) else {
                    throw self.fail(failuresNode, "'failures' must be a whole number from 1 to 1000 (failed calls in a row that open the circuit)")
                }
                policy.failures = failures
            }
            if let node = fields["coolDown"] { policy.coolDown = try self.duration(node, key: "coolDown") }
            return policy
        }

        func retry(_ node: Node) throws(RouteFileError) -> RetryPolicy {
            let fields = try self.mapping(node, what: "'retry'", allowed: Self.retryKeys)
            var policy = RetryPolicy(attempts: 3)
            if let attemptsNode = fields["attempts"] {
                guard let attempts = self.int(attemptsNode), (1...100).contains(attempts) else {
                    throw self.fail(attemptsNode, "'attempts' must be a whole number from 1 to 100 (total tries, the first included)")
                }
                policy.attempts = attempts
            }
            if let node = fields["backoff"] { policy.backoff = try self.duration(node, key: "backoff") }
            if let node = fields["max"] { policy.max = try self.duration(node, key: "max") }
            if policy.max < policy.backoff, let node = fields["max"] {
                throw self.fail(node, "'max' (\(DurationParser.format(policy.max))) is less than 'backoff' (\(DurationParser.format(policy.backoff)))")
            }
            return policy
        }

        func sources(_ node: Node) throws(RouteFileError) -> [RouteSource] {
            guard case .sequence(let sequence) = node else {
                throw self.fail(node, "'from' must be a list, e.g. '- files: { dir: drop/in }'")
            }
            var sources: [RouteSource] = []
            for item in sequence {
                let fields = try self.mapping(item, what: "a 'from' entry", allowed: Self.sourceKinds)
                guard fields.count == 1, let (kind, body) = fields.first else {
                    throw self.fail(item, "each 'from' entry names one initiator: files, csv or stomp")
                }
                switch kind {
                case "files":
                    let source = try self.mapping(body, what: "'files'", allowed: ["dir", "pattern", "concurrency", "format", "order", "onFailure"])
                    var files = FileSource(dir: try self.required(source, "dir", in: body, kind: "files"))
                    if let value = source["pattern"] { files.pattern = try self.string(value, key: "pattern") }
                    if let value = source["concurrency"] { files.concurrency = try self.positive(value, key: "concurrency") }
                    if let value = source["format"] {
                        files.format = try self.string(value, key: "format")
                        guard ["json", "text", "base64"].contains(files.format) else {
                            throw self.fail(value, "'format' must be json, text or base64")
                        }
                    }
                    files.order = try self.order(source, in: body)
                    sources.append(.files(files))
                case "csv":
                    let source = try self.mapping(body, what: "'csv'", allowed: ["dir", "pattern", "header", "delimiter", "concurrency", "encoding", "order", "onFailure"])
                    var csv = CSVSource(dir: try self.required(source, "dir", in: body, kind: "csv"))
                    if let value = source["pattern"] { csv.pattern = try self.string(value, key: "pattern") }
                    if let value = source["header"] { csv.header = try self.bool(value, key: "header") }
                    if let value = source["concurrency"] { csv.concurrency = try self.positive(value, key: "concurrency") }
                    if let value = source["delimiter"] {
                        let text = try self.string(value, key: "delimiter")
                        guard text.count == 1, let character = text.first, character.isASCII, character != "\"", !character.isNewline else {
                            throw self.fail(value, "'delimiter' must be one ASCII character other than a quote or newline")
                        }
                        csv.delimiter = character
                    }
                    if let value = source["encoding"] {
                        let text = try self.string(value, key: "encoding").lowercased()
                        let name = ["utf8": "utf-8", "iso-8859-1": "latin1", "latin-1": "latin1"][text] ?? text
                        guard CSVSource.encodings.contains(name) else {
                            throw self.fail(value, "'encoding' must be one of \(CSVSource.encodings.joined(separator: ", ")), not '\(text)'")
                        }
                        csv.encoding = name
                    }
                    csv.order = try self.order(source, in: body)
                    sources.append(.csv(csv))
                default:
                    let source = try self.mapping(body, what: "'stomp'", allowed: ["url", "destination", "replyTo", "deadLetter", "prefetch", "order", "onFailure", "ack"])
                    var stomp = StompSource(destination: try self.required(source, "destination", in: body, kind: "stomp"))
                    if let value = source["url"] { stomp.url = try self.string(value, key: "url") }
                    if let value = source["replyTo"] { stomp.replyTo = try self.string(value, key: "replyTo") }
                    if let value = source["deadLetter"] { stomp.deadLetter = try self.string(value, key: "deadLetter") }
                    if let value = source["prefetch"] { stomp.prefetch = try self.positive(value, key: "prefetch") }
                    stomp.order = try self.order(source, in: body)
                    if let value = source["ack"] {
                        let text = try self.string(value, key: "ack")
                        guard let ack = StompAck(rawValue: text) else {
                            throw self.fail(value, "'ack' is client-individual (the default: acknowledged once answered) or auto (at-most-once), not '\(text)'")
                        }
                        // A held message stays unacknowledged in hand: auto has nothing to hold.
                        if ack == .auto && stomp.order != nil { throw self.fail(value, "'ack: auto' cannot keep an ordered lane's place: drop 'order' or the ack") }
                        stomp.ack = ack
                    }
                    sources.append(.stomp(stomp))
                }
            }
            return sources
        }

        /// A source's `order: { key: FIELD }` and `onFailure: hold | continue`.
        func order(_ source: [String: Node], in body: Node) throws(RouteFileError) -> OrderPolicy? {
            guard let node = source["order"] else {
                if let onFailure = source["onFailure"] {
                    throw self.fail(onFailure, "'onFailure' applies to ordered sources: add 'order: { key: FIELD }'")
                }
                return nil
            }
            let fields = try self.mapping(node, what: "'order'", allowed: ["key"])
            guard let keyNode = fields["key"] else { throw self.fail(node, "'order' needs 'key': the field (a CSV column, a STOMP header) whose inputs run in order") }
            let key = try self.string(keyNode, key: "key")
            guard !key.isEmpty else { throw self.fail(keyNode, "'key' is empty") }
            var policy = OrderPolicy(key: key)
            if let value = source["onFailure"] {
                let text = try self.string(value, key: "onFailure")
                guard let onFailure = OrderPolicy.OnFailure(rawValue: text) else { throw self.fail(value, "'onFailure' must be hold or continue, not '\(text)'") }
                policy.onFailure = onFailure
            }
            return policy
        }

        // MARK: typed values

        func mapping(_ node: Node, what: String, allowed: [String]) throws(RouteFileError) -> [String: Node] {
            guard case .mapping(let mapping) = node else {
                throw self.fail(node, "\(what) must be a mapping of keys to values, not \(self.kind(node))")
            }
            var fields: [String: Node] = [:]
            for (keyNode, value) in mapping {
                guard case .scalar(let scalar) = keyNode else { throw self.fail(keyNode, "keys must be plain words") }
                let key = scalar.string
                guard allowed.contains(key) else {
                    var reason = "unknown key '\(key)' in \(what)"
                    if let guess = Self.closest(to: key, in: allowed) { reason += "; did you mean '\(guess)'?" }
                    reason += " (allowed: \(allowed.joined(separator: ", ")))"
                    throw self.fail(keyNode, reason)
                }
                fields[key] = value
            }
            return fields
        }

        func required(_ fields: [String: Node], _ key: String, in node: Node, kind: String) throws(RouteFileError) -> String {
            guard let value = fields[key] else { throw self.fail(node, "'\(kind)' needs '\(key)'") }
            let string = try self.string(value, key: key)
            guard !string.isEmpty else { throw self.fail(value, "'\(key)' must not be empty") }
            return string
        }

        func string(_ node: Node, key: String) throws(RouteFileError) -> String {
            guard case .scalar(let scalar) = node else {
                throw self.fail(node, "'\(key)' must be a single value, not \(self.kind(node))")
            }
            return scalar.string
        }

        func bool(_ node: Node, key: String) throws(RouteFileError) -> Bool {
            guard case .scalar(let scalar) = node, let value = ["true": true, "false": false][scalar.string] else {
                throw self.fail(node, "'\(key)' must be true or false")
            }
            return value
        }

        func int(_ node: Node) -> Int? {
            guard case .scalar(let scalar) = node else { return nil }
            return Int(scalar.string)
        }

        func positive(_ node: Node, key: String) throws(RouteFileError) -> Int {
            guard let value = self.int(node), value > 0, value <= 100_000 else {
                throw self.fail(node, "'\(key)' must be a whole number from 1 to 100000")
            }
            return value
        }

        func duration(_ node: Node, key: String) throws(RouteFileError) -> Duration {
            let text = try self.string(node, key: key)
            guard let duration = DurationParser.parse(text) else {
                throw self.fail(node, "bad duration '\(text)' for '\(key)' (use a number and a unit: 500ms, 2s, 1.5s, 1m)")
            }
            guard duration > .zero else { throw self.fail(node, "'\(key)' must be more than zero") }
            return duration
        }

        func kind(_ node: Node) -> String {
            switch node {
            case .scalar(let scalar): "the value '\(scalar.string)'"
            case .mapping: "a mapping"
            case .sequence: "a list"
            case .alias: "an alias"
            }
        }

        /// The allowed key nearest to a misspelt one, if it is near enough to be a typo.
        static func closest(to key: String, in candidates: [String]) -> String? {
            let scored = candidates.map { ($0, Self.editDistance(key.lowercased(), $0.lowercased())) }
            guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, key.count / 3) else { return nil }
            return best.0
        }

        static func editDistance(_ a: String, _ b: String) -> Int {
            let a = Array(a)
            let b = Array(b)
            if a.isEmpty { return b.count }
            var previous = Array(0...b.count)
            for i in 1...a.count {
                var current = [i] + Array(repeating: 0, count: b.count)
                for j in stride(from: 1, through: b.count, by: 1) {
                    current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                previous = current
            }
            return previous[b.count]
        }
    }
}
