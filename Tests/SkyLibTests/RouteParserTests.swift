import Testing

@testable import SkyLib

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
