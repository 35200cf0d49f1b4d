import Testing

@testable import RouteModel
import SkyLib

struct RouteParserTests {
    @Test func readsAFullRoute() throws {
        let route = try RouteParser.parse(
            yaml: """
                name: greet
                description: validate, shout, log
                timeout: 2s
                from:
                  - files: { dir: drop/greet, pattern: "*.json" }
                  - csv:   { dir: drop/people, delimiter: ";" }
                  - stomp: { destination: /queue/greet, replyTo: /queue/greet.out }
                steps:
                  - service: validate
                    retry: { attempts: 3, backoff: 20ms, max: 1s }
                    timeout: 500ms
                  - service: uppercase
                    version: "1.*"
                    merge: true
                  - service: audit
                    async: true
                  - service: enrich
                    errOnFail: false
                """,
            file: "greet.yaml"
        )
        #expect(route.name == "greet")
        #expect(route.timeout == .seconds(2))
        #expect(route.sources == [
            .files(FileSource(dir: "drop/greet", pattern: "*.json")),
            .csv(CSVSource(dir: "drop/people", delimiter: ";")),
            .stomp(StompSource(destination: "/queue/greet", replyTo: "/queue/greet.out")),
        ])
        #expect(route.steps.map(\.service) == ["validate", "uppercase", "audit", "enrich"])
        #expect(route.steps[0].retry == RetryPolicy(attempts: 3, backoff: .milliseconds(20), max: .seconds(1)))
        #expect(route.steps[0].timeout == .milliseconds(500))
        #expect(route.steps[0].line == 9)
        #expect(route.steps[1].version == "1.*" && route.steps[1].merge)
        #expect(route.steps[2].isAsync && !route.steps[2].merge)
        #expect(!route.steps[3].errOnFail && route.steps[0].errOnFail)
    }

    @Test(arguments: [
        ("name: a\nstpes:\n  - service: x\n", 2, "unknown key 'stpes' in a route; did you mean 'steps'?"),
        ("name: a\nsteps:\n  - service: x\n    asnyc: true\n", 4, "unknown key 'asnyc' in step 1; did you mean 'async'?"),
        ("name: a\nsteps:\n  - version: \"1\"\n", 3, "step 1 has no 'service'"),
        ("name: a\nsteps:\n  - service: x\n    async: maybe\n", 4, "'async' must be true or false"),
        ("name: a\ntimeout: 2 sec\nsteps:\n  - service: x\n", 2, "bad duration '2 sec' for 'timeout'"),
        ("name: a\ntimeout: 2\nsteps:\n  - service: x\n", 2, "bad duration '2'"),
        ("steps:\n  - service: x\n", 1, "missing 'name'"),
        ("name: a\n", 1, "missing 'steps'"),
        ("name: a\nsteps: []\n", 2, "'steps' is empty"),
        ("name: a\nsteps: uppercase\n", 2, "'steps' must be a list"),
        ("name: a b\nsteps:\n  - service: x\n", 1, "route name 'a b' may only use"),
        ("name: a\nsteps:\n  - service: x\n    retry: { attempts: 0 }\n", 4, "'attempts' must be a whole number from 1 to 100"),
        ("name: a\nsteps:\n  - service: x\n    retry: { backoff: 2s, max: 1s }\n", 4, "'max' (1s) is less than 'backoff' (2s)"),
        ("name: a\nsteps:\n  - service: x\n    async: true\n    merge: true\n", 5, "is async, so its output is never awaited"),
        ("name: a\nsteps:\n  - service: x\n    version: \"1.*.2\"\n", 4, "bad version selector"),
        ("name: a\nfrom:\n  - ftp: { dir: x }\nsteps:\n  - service: x\n", 3, "unknown key 'ftp'"),
        ("name: a\nfrom:\n  - files: { pattern: x }\nsteps:\n  - service: x\n", 3, "'files' needs 'dir'"),
        ("name: a\nsteps:\n  - service: x\n  - service: [y\n", 5, "(while parsing a flow sequence started at line 4)"),
        ("name: a\nname: b\nsteps:\n  - service: x\n", 1, "duplicate key 'name'"),
        ("- just\n- a list\n", 1, "a route must be a mapping"),
        ("", 1, "file is empty"),
        // when, choice, parallel (issue 21): every mistake caught at load, with its line.
        ("name: a\nsteps:\n  - service: x\n    when: { path: a, above: 3 }\n", 4, "unknown key 'above' in a condition"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a, matches: \"(\" }\n", 4, "bad regular expression '('"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a..b, exists: true }\n", 4, "bad path 'a..b'"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a, gt: many }\n", 4, "'gt' takes a number"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a }\n", 4, "has no test"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a, gt: 1, lt: 5 }\n", 4, "use 'all' to combine them"),
        ("name: a\nsteps:\n  - service: x\n    when: { all: [] }\n", 4, "'all' takes a non-empty list"),
        ("name: a\nsteps:\n  - service: x\n    when: { path: a, in: 3 }\n", 4, "'in' takes a list"),
        ("name: a\nsteps:\n  - choice:\n      - otherwise: [ { service: y } ]\n      - when: { path: a, exists: true }\n        steps: [ { service: z } ]\n", 4, "'otherwise' must be the last branch"),
        ("name: a\nsteps:\n  - choice:\n      - when: { path: a, exists: true }\n", 4, "a 'choice' branch needs 'steps'"),
        ("name: a\nsteps:\n  - choice:\n      - when: { path: a, exists: true }\n        steps: [ { servce: y } ]\n", 5, "unknown key 'servce' in step 1 of branch 1 of the choice in step 1; did you mean 'service'?"),
        ("name: a\nsteps:\n  - service: x\n    choice: []\n", 3, "a step is one of service, choice or parallel"),
        ("name: a\nsteps:\n  - choice: []\n    merge: true\n", 4, "'merge' does not apply to a 'choice' step"),
        ("name: a\nsteps:\n  - parallel: { join: zip, branches: { p: [ { service: y } ] } }\n", 3, "'join' must be merge or collect"),
        ("name: a\nsteps:\n  - parallel: { branches: {} }\n", 3, "'parallel' needs 'branches'"),
        ("name: a\nsteps:\n  - parallel:\n      branches:\n        p: [ { service: y, async: true } ]\n", 4, "is async: move it out of the parallel step"),
        ("name: a\nsteps:\n  - service: x\n    breaker: { failures: 0 }\n", 4, "'failures' must be a whole number from 1 to 1000"),
        ("name: a\nsteps:\n  - service: x\n    breaker: { cooldown: 5s }\n", 4, "unknown key 'cooldown' in 'breaker'; did you mean 'coolDown'?"),
        ("name: a\nrate: 100 per second\nsteps:\n  - service: x\n", 2, "bad rate '100 per second'"),
        ("name: a\nrate: { per: 1s }\nsteps:\n  - service: x\n", 2, "'rate' needs 'limit'"),
        ("name: a\nsteps:\n  - service: x\n    rate: { limit: 5, burst: 0 }\n", 4, "'burst' must be a whole number"),
        ("name: a\nfrom:\n  - stomp: { destination: /queue/a, ack: client }\nsteps:\n  - service: x\n", 3, "'ack' is client-individual (the default: acknowledged once answered) or auto (at-most-once), not 'client'"),
        ("name: a\nfrom:\n  - stomp: { destination: /queue/a, ack: auto, order: { key: k } }\nsteps:\n  - service: x\n", 3, "'ack: auto' cannot keep an ordered lane's place"),
    ])
    func rejectsWithLineAndReason(yaml: String, line: Int, reason: String) {
        #expect {
            _ = try RouteParser.parse(yaml: yaml, file: "routes/bad.yaml")
        } throws: { error in
            guard let error = error as? RouteFileError else { return false }
            return error.file == "routes/bad.yaml" && error.line == line && error.reason.contains(reason)
                && error.description.hasPrefix("routes/bad.yaml:\(line)")
        }
    }

    /// `ack: auto`, the at-most-once setting a drill should catch losing messages.
    @Test func aStompSourceAcksAfterTheAnswerUnlessToldAuto() throws {
        let routes = try ["", "ack: client-individual, ", "ack: auto, "].map { ack in
            try RouteParser.parse(yaml: "name: a\nfrom:\n  - stomp: { \(ack)destination: /queue/a }\nsteps:\n  - service: x\n", file: "a.yaml")
        }
        let acks = routes.map { route -> StompAck? in
            guard case .stomp(let stomp) = route.sources.first else { return nil }
            return stomp.ack
        }
        #expect(acks == [.clientIndividual, .clientIndividual, .auto])
    }

    @Test func choiceParallelAndConditionsRead() throws {
        let route = try RouteParser.parse(yaml: """
            name: orders
            steps:
              - service: vat
                when: { path: order.country, in: [UK, IE] }
              - choice:
                  - when: { all: [ { path: order.total, gte: 1000 }, { not: { path: order.trusted, equals: true } } ] }
                    steps: [ { service: review } ]
                  - otherwise: [ { service: approve } ]
              - parallel:
                  join: collect
                  branches:
                    price: [ { service: price } ]
                    stock: [ { service: stock, errOnFail: false } ]
              - service: ship
            """, file: "orders.yaml")
        #expect(route.steps.count == 4)
        #expect(route.steps[0].when?.holds(for: ["order": ["country": "IE"]]) == true)
        #expect(route.steps[0].when?.holds(for: ["order": ["country": "FR"]]) == false)
        guard case .choice(let branches, let otherwise) = route.steps[1].action else { Issue.record("not a choice"); return }
        #expect(branches[0].when.holds(for: ["order": ["total": 1500]]))
        #expect(!branches[0].when.holds(for: ["order": ["total": 1500, "trusted": true]]))
        #expect(!branches[0].when.holds(for: ["order": ["total": "1500"]]), "a string is not a number")
        #expect(otherwise?.map(\.service) == ["approve"])
        guard case .parallel(let parallel) = route.steps[2].action else { Issue.record("not parallel"); return }
        #expect(parallel.join == .collect && parallel.branches.map(\.name) == ["price", "stock"])
        // Every call is numbered in file order, nested ones too: their counters are found so.
        #expect(route.calls.map(\.service) == ["vat", "review", "approve", "price", "stock", "ship"])
        #expect(route.calls.map(\.slot) == [0, 1, 2, 3, 4, 5])
        #expect(route.steps.map(\.outline).joined(separator: " → ").contains("choice(review | otherwise: approve)"))
    }

    @Test func conditionsOnPathsAndValues() throws {
        let document: JSONValue = ["order": ["items": [["sku": "a-1", "qty": 2]], "total": 10.5, "note": .null]]
        func holds(_ yaml: String) throws -> Bool {
            let route = try RouteParser.parse(yaml: "name: c\nsteps:\n  - service: x\n    when: \(yaml)\n", file: "c.yaml")
            return route.steps[0].when?.holds(for: document) ?? false
        }
        #expect(try holds("{ path: order.items.0.sku, equals: a-1 }"))
        #expect(try holds("{ path: order.items.0.qty, equals: 2.0 }"), "numbers compare by value")
        #expect(try !holds("{ path: order.items.0.qty, equals: \"2\" }"), "a quoted 2 is a string")
        #expect(try holds("{ path: order.items.5.sku, exists: false }"))
        #expect(try holds("{ path: order.note, exists: false }"), "null counts as missing")
        #expect(try holds("{ path: order.total, lt: 11 }") && holds("{ path: order.total, gte: 10.5 }"))
        #expect(try holds("{ path: order.items.0.sku, matches: \"[a-z]-[0-9]+\" }"))
        #expect(try !holds("{ path: order.items.0.sku, matches: \"[a-z]\" }"), "the whole string must match")
        #expect(try holds("{ any: [ { path: nope, exists: true }, { path: order.total, gt: 1 } ] }"))
        #expect(try holds("{ not: { path: order.total, in: [1, 2, 3] } }"))
    }

    @Test func durationsParseAndFormat() {
        #expect(DurationParser.parse("250ms") == .milliseconds(250))
        #expect(DurationParser.parse("1.5s") == .milliseconds(1500))
        #expect(DurationParser.parse("2m") == .seconds(120))
        #expect(DurationParser.parse("10") == nil)
        #expect(DurationParser.parse("-1s") == nil)
        #expect(DurationParser.parse("ms") == nil)
        #expect(DurationParser.format(.milliseconds(250)) == "250ms")
        #expect(DurationParser.format(.seconds(2)) == "2s")
        #expect(DurationParser.format(.milliseconds(1500)) == "1.5s")
    }

    @Test func versionSelectors() throws {
        let minor = try #require(VersionSelector("1.*"))
        #expect(minor.matches("1.0.0") && minor.matches("1.9") && !minor.matches("2.0.0") && !minor.matches("10.0"))
        let exact = try #require(VersionSelector("1.2.0"))
        #expect(exact.matches("1.2.0") && !exact.matches("1.2.1"))
        #expect(try #require(VersionSelector("*")).matches("anything"))
        #expect(VersionSelector("1.*.2") == nil)
        #expect(VersionSelector("") == nil)
    }

    @Test func retryDelaysGrowWithJitterAndStayUnderMax() {
        let policy = RetryPolicy(attempts: 10, backoff: .milliseconds(20), max: .milliseconds(100))
        for attempt in 1...8 {
            let delay = policy.delay(afterAttempt: attempt)
            let base = min(Duration.milliseconds(20) * (1 << (attempt - 1)), .milliseconds(100))
            #expect(delay >= base / 2 && delay <= base)
        }
    }
}

/// The worst case `sky route check` prints: timeouts × attempts plus back-off, branches at
/// their longest, out-of-band steps free, everything within the route's timeout.
@Suite struct WorstCaseTests {
    @Test func timeoutsRetriesAndBranchesAddUpWithinTheRouteTimeout() throws {
        let route = try RouteParser.parse(yaml: """
            name: w
            timeout: 10s
            steps:
              - service: a
                timeout: 100ms
                retry: { attempts: 3, backoff: 20ms, max: 30ms }
              - service: audit
                async: true
              - choice:
                  - when: { path: x, exists: true }
                    steps: [ { service: b, timeout: 200ms } ]
                  - otherwise: [ { service: c, timeout: 50ms } ]
              - parallel:
                  branches:
                    p: [ { service: d, timeout: 300ms } ]
                    q: [ { service: e, timeout: 100ms }, { service: f, timeout: 100ms } ]
            """, file: "w.yaml")
        // a: 3 × 100 ms + 20 ms + 30 ms; choice: 200 ms; parallel: 300 ms.
        #expect(route.worstCase() == .milliseconds(350 + 200 + 300))
        // A step without a timeout may take the whole route's.
        let open = try RouteParser.parse(yaml: "name: o\ntimeout: 2s\nsteps:\n  - service: a\n  - service: b\n", file: "o.yaml")
        #expect(open.worstCase() == .seconds(2))
    }

    /// A route test's `faults:` and statements read; a bad fault is named with its line.
    @Test func routeTestFaultsRead() throws {
        let file = try RouteTestFile.parse(yaml: """
            route: r
            cases:
              - name: c
                input: {}
                faults:
                  a: [ { fail: unavailable, times: 2 }, { fail: bad_request }, { delay: 3s }, { reset: true }, { hang: true } ]
                  registry: [ { down: 5s } ]
                expectError: step_failed
                expectErrors: [ rejected ]
                attempts: { a: 5 }
                elapsed: 2s
            """, file: "r.test.yaml")
        let testCase = try #require(file.cases.first)
        #expect(testCase.faults["a"] == [.fail(code: "unavailable", retryable: true, times: 2), .fail(code: "bad_request", retryable: false, times: 1), .delay(.seconds(3)), .reset, .hang])
        #expect(testCase.registryDown == .seconds(5) && testCase.expectErrors == ["rejected"] && testCase.attempts == ["a": 5] && testCase.elapsed == .seconds(2))
        #expect(throws: RouteFileError.self) {
            try RouteTestFile.parse(yaml: "route: r\ncases:\n  - input: {}\n    expect: {}\n    faults:\n      a: [ { explode: true } ]\n", file: "bad.test.yaml")
        }
        do {
            _ = try RouteTestFile.parse(yaml: "route: r\ncases:\n  - input: {}\n    expect: {}\n    faults:\n      a: [ { delay: soon } ]\n", file: "bad.test.yaml")
            Issue.record("a bad delay was read")
        } catch {
            #expect(error.description.hasPrefix("bad.test.yaml:6:"), "\(error)")
        }
    }
}
