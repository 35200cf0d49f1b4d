import Foundation
import Logging
@testable import RegistryKit
@testable import RegistrySQLite
import SkyLib
import RouteModel
import Testing
import Synchronization

@Suite struct SpanRecorderTests {
    func span(_ id: String) -> Span {
        Span(traceID: "trace", spanID: id, parentID: nil, kind: .route, name: "r", route: "r", recorder: "me", host: "h", start: Date(), duration: 0.001)
    }

    @Test func aFullBufferDropsAndCountsAndAFlushWritesToTheRegistry() async throws {
        let registry = SwitchableSpans(try SQLiteRegistry(path: NSTemporaryDirectory() + "spans-\(UUID().uuidString)/r.sqlite"))
        let counters = Counters()
        let recorder = SpanRecorder(registry: registry, recorder: "me", host: "h", counters: counters, capacity: 3, logger: .init(label: "test"))
        for index in 0..<5 { recorder.record(self.span("s\(index)")) }
        #expect(recorder.pending == 3)
        #expect(counters.value("spans-dropped") == 2)
        await recorder.flush()
        #expect(recorder.pending == 0)
        #expect(try await registry.spans(traceID: "trace").map(\.spanID).sorted() == ["s0", "s1", "s2"])
        #expect(counters.value("spans-recorded") == 3)

        // The registry is down: the batch is dropped and counted, never retried forever.
        registry.outage.down.withLock { $0 = true }
        recorder.record(self.span("s9"))
        await recorder.flush()
        #expect(recorder.pending == 0)
        #expect(counters.value("spans-dropped") == 3)
        #expect(counters.value("spans-flush-errors") == 1)
    }

    /// The span buffer SECURITY.md states: 4,096 spans wait for a flush; the 4,097th is
    /// dropped and counted.
    @Test func theBufferHoldsTheStatedFourThousandNinetySix() async throws {
        let registry = try SQLiteRegistry(path: NSTemporaryDirectory() + "spans-\(UUID().uuidString)/r.sqlite")
        let counters = Counters()
        let recorder = SpanRecorder(registry: registry, recorder: "me", host: "h", counters: counters, logger: .init(label: "test"))
        for index in 0..<4096 { recorder.record(self.span("s\(index)")) }
        #expect(recorder.pending == 4096 && counters.value("spans-dropped") == 0)
        recorder.record(self.span("one more"))
        #expect(recorder.pending == 4096 && counters.value("spans-dropped") == 1)
    }
}
