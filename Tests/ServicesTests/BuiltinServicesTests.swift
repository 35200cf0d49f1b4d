import Logging
import Testing

@testable import Services
@testable import SkyLib
import RouteModel

struct BuiltinServicesTests {
    func call(_ name: String, _ payload: JSONValue, id: String = "r1") async throws -> JSONValue {
        let definition = try #require(BuiltinServices.definition(named: name, logger: Logger(label: "test")))
        return try await definition.handler.handle(RequestEnvelope(id: id, route: "t", payload: payload)).payload
    }

    @Test func everyNamedServiceExists() {
        for name in BuiltinServices.names {
            #expect(BuiltinServices.definition(named: name, logger: Logger(label: "test"))?.name == name)
        }
        #expect(BuiltinServices.definition(named: "nope", logger: Logger(label: "test")) == nil)
    }

    @Test func uppercaseReachesEveryStringButNotKeys() async throws {
        #expect(try await self.call("uppercase", ["text": "hi", "list": ["a", 1, ["b": "c"]]]) == ["text": "HI", "list": ["A", 1, ["b": "C"]]])
    }

    @Test func reverseReversesStrings() async throws {
        #expect(try await self.call("reverse", ["text": "abc", "n": 1]) == ["text": "cba", "n": 1])
    }

    @Test func wordcountCountsWordsInText() async throws {
        #expect(try await self.call("wordcount", ["text": "  hello big\n world "]) == ["text": "  hello big\n world ", "words": 3])
        await #expect(throws: SkyError(.badRequest, "wordcount needs an object with a string field \"text\"", service: "wordcount")) {
            try await self.call("wordcount", ["body": "x"])
        }
    }

    @Test func echoAndAuditAnswerTheDocument() async throws {
        #expect(try await self.call("echo", [1, "two"]) == [1, "two"])
        #expect(try await self.call("audit", ["a": 1]) == ["a": 1])
    }

    @Test func flakyFailsTheFirstCallsOfEachRequestRetryably() async throws {
        let flaky = Flaky(failTimes: 2)
        let request = RequestEnvelope(id: "same", route: "t", payload: ["x": 1])
        for _ in 0..<2 {
            await #expect {
                try await flaky.handle(request)
            } throws: { error in
                (error as? SkyError)?.isRetryable == true
            }
        }
        #expect(try await flaky.handle(request).payload == ["x": 1, "attempts": 3])
        // Another request starts over; the document may choose its own count.
        #expect(try await flaky.handle(RequestEnvelope(id: "other", route: "t", payload: ["failTimes": 0])).payload["attempts"] == 1)
    }

    @Test func slowSleepsAsAskedAndStopsWhenCancelled() async throws {
        #expect(try await self.call("slow", ["sleepMs": 1])["sleptMs"] == 1)
        let task = Task { try await Slow(sleepMilliseconds: 60_000).handle(RequestEnvelope(route: "t", payload: [:])) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
