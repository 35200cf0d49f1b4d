import Foundation
import Logging
import Synchronization
import SkyLib
import Testing

@Suite struct LatencyHistogramTests {
    @Test func quantilesFallInTheRightBuckets() throws {
        let histogram = LatencyHistogram()
        for _ in 0..<98 { histogram.record(.microseconds(300)) }
        histogram.record(.milliseconds(40))
        histogram.record(.milliseconds(40))
        let counts = histogram.snapshot()
        #expect(counts.reduce(0, +) == 100)
        let p50 = try #require(LatencyHistogram.quantile(0.5, of: counts))
        let p99 = try #require(LatencyHistogram.quantile(0.99, of: counts))
        // Bucket upper bounds: within 25% above the true value.
        #expect(p50 >= 300 && p50 <= 375)
        #expect(p99 >= 40_000 && p99 <= 50_000)
        #expect(LatencyHistogram.quantile(0.5, of: [Int64](repeating: 0, count: counts.count)) == nil)
    }

    @Test func sparseJSONRoundTrips() {
        let histogram = LatencyHistogram()
        histogram.record(.milliseconds(3))
        histogram.record(.seconds(200))  // beyond the last bound: the overflow bucket
        let counts = histogram.snapshot()
        #expect(LatencyHistogram.dense(LatencyHistogram.sparse(counts)) == counts)
        #expect(counts.last == 1)
    }
}

@Suite struct TraceTests {
    @Test func theSamplerTakesEveryTraceUntilItsRateThenStops() {
        let sampler = TraceSampler(perSecond: 5)
        let taken = (0..<20).filter { _ in sampler.sample() }.count
        #expect(taken == 5)
        #expect(sampler.root(forced: true).sampled)
        #expect(TraceSampler(perSecond: 0).sample() == false)
    }

    @Test func sampledTravelsToChildSpansAndThroughJSON() throws {
        let root = TraceContext.root(sampled: true)
        let child = root.child()
        #expect(child.sampled && child.parentID == root.spanID && child.traceID == root.traceID)
        let envelope = RequestEnvelope(route: "r", payload: nil, trace: child)
        #expect(try RequestEnvelope(json: envelope.json).trace == child)
    }

    @Test func theTreeNestsSpansUnderTheirParents() {
        let start = Date()
        let spans = [
            Span(traceID: "t", spanID: "a", parentID: nil, kind: .route, name: "text", route: "text", recorder: "router-node", host: "h1", start: start, duration: 0.004),
            Span(traceID: "t", spanID: "c", parentID: "a", kind: .call, name: "wordcount", route: "text", recorder: "router-node", host: "h1",
                 instance: "node-bbbbbbbb", address: "127.0.0.1:2", start: start.addingTimeInterval(0.002), duration: 0.001, error: "boom"),
            Span(traceID: "t", spanID: "b", parentID: "a", kind: .call, name: "uppercase", route: "text", recorder: "router-node", host: "h1",
                 instance: "node-aaaaaaaa", address: "127.0.0.1:1", start: start.addingTimeInterval(0.001), duration: 0.001),
            Span(traceID: "t", spanID: "d", parentID: "b", kind: .service, name: "uppercase", route: "text", recorder: "node-aaaaaaaa", host: "h2",
                 start: start.addingTimeInterval(0.0012), duration: 0.0005),
        ]
        let lines = TraceTree.render(spans).split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("trace t: route text, 4 spans, 2 processes"))
        #expect(lines[1].hasPrefix("route text "))
        #expect(lines[2].hasPrefix("├─ call uppercase #1 → aaaaaaaa"))  // the short id: the last 8
        #expect(lines[3].hasPrefix("│  └─ service uppercase"))
        #expect(lines[4].hasPrefix("└─ call wordcount #1 → bbbbbbbb") && lines[4].hasSuffix("✗ boom"))
    }
}

@Suite struct TokenTests {
    @Test func bearerAndBasicTokensAreCheckedExactly() {
        #expect(BearerToken.matches("Bearer s3cret", token: "s3cret"))
        #expect(!BearerToken.matches("Bearer s3cre", token: "s3cret"))
        #expect(!BearerToken.matches("Bearer s3cret!", token: "s3cret"))
        let basic = "Basic " + Data("anyone:s3cret".utf8).base64EncodedString()
        #expect(BearerToken.matchesBasic(basic, token: "s3cret"))
        #expect(!BearerToken.matchesBasic("Basic " + Data("anyone:nope".utf8).base64EncodedString(), token: "s3cret"))
        #expect(!BearerToken.matchesBasic("Basic !!!", token: "s3cret"))
    }
}
