import RouteModel
import SkyTestSupport
import Testing

/// Mutated route files: every case either parses or fails with our typed error and a message
/// that says where; none crashes or hangs. A crash seen once is kept in `regressions` below
/// and replayed on every run.
@Suite struct RouteFuzzTests {
    static let route = """
        name: text
        description: shout
        timeout: 2s
        dedupe: { key: order.id, for: 24h }
        rate: { limit: 200, per: 1s, burst: 50 }
        from:
          - files: { dir: drop/text, pattern: "*.json", concurrency: 8 }
          - csv: { dir: drop/rows, header: true, delimiter: "," }
          - stomp: { destination: /queue/a, replyTo: /queue/b, prefetch: 16 }
        steps:
          - service: uppercase
            version: "1.*"
            retry: { attempts: 3, backoff: 20ms, max: 200ms }
            timeout: 500ms
          - service: wordcount
            merge: true
            errOnFail: false
          - service: audit
            async: true
          - service: vat
            breaker: { failures: 5, coolDown: 10s }
            rate: 20/s
            when: { all: [ { path: order.country, in: [UK, IE] }, { not: { path: order.vat, exists: true } } ] }
          - choice:
              - when: { path: order.total, gt: 1000 }
                steps: [ { service: review } ]
              - when: { path: order.email, matches: ".*@example\\.com" }
                steps: [ { service: flag } ]
              - otherwise: [ { service: approve } ]
          - parallel:
              join: collect
              branches:
                price: [ { service: price, timeout: 100ms } ]
                stock: [ { service: stock, errOnFail: false } ]
        """

    /// Inputs that once broke something (or nearly): replayed every run.
    static let regressions = [
        "name: a\nsteps:\n  - service: [",
        "name: &a a\nsteps: *a",
        "name: a\nsteps:\n  - service: x\n    retry: { attempts: 99999999999999999999 }",
        "name: a\ntimeout: 1e400s\nsteps:\n  - service: x",
        "\u{FEFF}name: a\nsteps:\n  - {service: x, merge: yes}",
        "name: a\nsteps: !!binary aGVsbG8=",
        String(repeating: "[", count: 10_000),
    ]

    @Test func mutatedRouteFilesParseOrFailWithAPosition() {
        var mutator = Mutator(seed: 0x5EED_0001)
        var inputs = Self.regressions.map { Array($0.utf8) }
        for _ in 0..<Mutator.cases(default: 1500) { inputs.append(mutator.mutate(Array(Self.route.utf8))) }
        for (index, bytes) in inputs.enumerated() {
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let route = try RouteParser.parse(yaml: text, file: "fuzz.yaml")
                #expect(!route.name.isEmpty && !route.steps.isEmpty, "case \(index) parsed to an empty route")
            } catch {
                let message = "\(error)"
                #expect(message.contains("fuzz.yaml"), "case \(index): the error does not say where: \(message)")
            }
        }
    }

}
