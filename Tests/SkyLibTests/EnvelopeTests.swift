import Foundation
import Testing

@testable import SkyLib

struct EnvelopeTests {
    @Test func envelopeRoundTripsThroughItsWireForm() throws {
        let envelope = RequestEnvelope(
            id: "r1", route: "text", step: "uppercase", payload: ["text": "hi"], meta: ["source": "http"],
            trace: TraceContext(traceID: "t", spanID: "s", parentID: "p"), deadline: 1_700_000_000_000, attempt: 2
        )
        let text = JSONWriter.string(envelope.json)
        #expect(try RequestEnvelope(json: JSONParser.parse(text)) == envelope)
    }

    /// The wire writer a router's calls use writes what JSONWriter writes of the envelope's
    /// document, byte for byte, whichever optional fields are there.
    @Test(arguments: [
        RequestEnvelope(route: "text", payload: ["text": "hi"]),
        RequestEnvelope(
            id: "r-\"1\"", route: "tëxt", step: "uppercase", payload: ["b": [1, 2.5, nil, true], "a": ["nested": "line\nbreak\u{7}"]],
            meta: ["source": "csv", "row": "12", "file": "in/ä.csv", "z": ""],
            trace: TraceContext(traceID: "t", spanID: "s", parentID: "p", sampled: true, state: "vendor=1"), deadline: 1_700_000_000_000, attempt: 3
        ),
        RequestEnvelope(id: "x", route: "r", payload: "just a string", trace: TraceContext.root(sampled: true).child(), deadline: -5),
        RequestEnvelope(id: "y", route: "r", payload: 42, meta: [:], trace: TraceContext(traceID: "t", spanID: "s", state: "")),
    ])
    func wireJSONIsWhatTheWriterWritesOfTheDocument(envelope: RequestEnvelope) throws {
        var bytes: [UInt8] = []
        envelope.appendWireJSON(to: &bytes, traceID: envelope.trace.traceID, spanID: envelope.trace.spanID)
        #expect(String(decoding: bytes, as: UTF8.self) == JSONWriter.string(envelope.json))
        #expect(try RequestEnvelope(json: JSONParser.parse(bytes)) == envelope)
    }

    @Test func envelopeErrorsNameTheField() {
        #expect(throws: SkyError(.badRequest, "request envelope needs a string field \"route\"")) {
            try RequestEnvelope(json: ["payload": 1])
        }
        #expect(throws: SkyError(.badRequest, "request envelope field \"meta.n\" must be a string, not number")) {
            try RequestEnvelope(json: ["route": "r", "meta": ["n": 1]])
        }
    }

    @Test func responsesAndErrorsRoundTrip() throws {
        let response = ServiceResponse(payload: [1, 2], meta: ["k": "v"], errors: [StepError(service: "s", message: "m", code: "c")])
        #expect(try ServiceResponse(json: response.json) == response)
        let error = SkyError(.stepFailed, "boom", retryable: true, route: "r", step: 2, service: "s")
        #expect(SkyError(json: error.json) == error)
        #expect(error.description == "route r: step 2 (s): boom [step_failed]")
    }

    @Test func tokensCompareExactly() {
        #expect(BearerToken.matches("Bearer s3cret", token: "s3cret"))
        #expect(!BearerToken.matches("Bearer s3cre", token: "s3cret"))
        #expect(!BearerToken.matches("Bearer s3cretx", token: "s3cret"))
        #expect(!BearerToken.matches("s3cret", token: "s3cret"))
        #expect(!BearerToken.matches(nil, token: "s3cret"))
    }
}

@Suite struct IdentifierTests {
    @Test func idsHaveTheirShapesAndDoNotRepeat() {
        let uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = Identifiers.requestID()
            #expect(id.wholeMatch(of: uuid) != nil, "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
        #expect(Identifiers.traceID().wholeMatch(of: /^[0-9a-f]{32}$/) != nil)
        #expect(Identifiers.spanID().wholeMatch(of: /^[0-9a-f]{16}$/) != nil && Identifiers.spanID() != "0000000000000000")
    }

    /// A million ids from 8 tasks at once: none repeats, each task's ids increase in the order
    /// it made them, and each id carries the time it was made.
    @Test func aMillionIdsFromEightTasksAreUniqueAndOrderedByTime() async {
        let before = Date()
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<125_000).map { _ in Identifiers.requestID() } }
            }
            return await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        let after = Date()
        var seen = Set<String>(minimumCapacity: 1_000_000)
        for batch in batches {
            #expect(zip(batch, batch.dropFirst()).allSatisfy { $0 < $1 }, "ids out of creation order")
            seen.formUnion(batch)
        }
        #expect(seen.count == 1_000_000)
        // Milliseconds are truncated; a sequence that ran over may borrow a few ahead.
        let times = batches.flatMap { [$0.first!, $0.last!] }.compactMap(Identifiers.createdAt)
        #expect(times.count == 16)
        #expect(times.allSatisfy { $0 >= before.addingTimeInterval(-0.001) && $0 <= after.addingTimeInterval(1) }, "\(times) not within \(before)…\(after)")
    }

    @Test func idsMadeLaterSortAfterAcrossKinds() async throws {
        let request = Identifiers.requestID()
        try await Task.sleep(for: .milliseconds(5))
        let node = Identifiers.nodeID(), trace = Identifiers.traceID()
        #expect(request < node)
        #expect(try #require(Identifiers.createdAt(request)) < #require(Identifiers.createdAt(trace)))
        #expect(Identifiers.createdAt("not-an-id") == nil)
    }
}

/// Ids kept as bits (``LazyIdentifier``) behave as their text: equal to it, hashed alike, and
/// minted requests and traces survive their wire form unchanged.
@Suite struct LazyIdentifierTests {
    @Test func aMintedIdEqualsItsTextAndHashesAlike() {
        for id in [LazyIdentifier.request(), .trace(), .span()] {
            let spelled = LazyIdentifier(id.text)
            #expect(id == spelled && spelled == id)
            #expect(id.hashValue == spelled.hashValue)
            #expect(Set([id, spelled]).count == 1)
        }
        #expect(LazyIdentifier.span() != LazyIdentifier.span())
        #expect(LazyIdentifier.request().text.wholeMatch(of: /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/) != nil)
        #expect(LazyIdentifier.trace().text.wholeMatch(of: /^[0-9a-f]{32}$/) != nil)
    }

    @Test func aMintedEnvelopeAndTraceRoundTripEqual() throws {
        let envelope = RequestEnvelope(route: "text", payload: ["text": "hi"], trace: TraceContext.root(sampled: true).child())
        let back = try RequestEnvelope(json: JSONParser.parse(JSONWriter.string(envelope.json)))
        #expect(back == envelope)
        #expect(back.id == envelope.id && back.trace.traceID == envelope.trace.traceID && back.trace.parentID == envelope.trace.parentID)
        #expect(envelope.trace.traceparent == "00-\(envelope.trace.traceID)-\(envelope.trace.spanID)-01")
    }
}
