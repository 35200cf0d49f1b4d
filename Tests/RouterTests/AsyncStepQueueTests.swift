import Logging
import Testing

@testable import Routing

/// The bound README.md and SECURITY.md state for out-of-band steps: 1,024 in flight, then
/// dropped (and counted by the router), held at that value.
struct AsyncStepQueueTests {
    @Test func atMostTheStatedThousandAndTwentyFourAreInFlight() {
        let queue = AsyncStepQueue(logger: Logger(label: "test"))
        #expect(queue.limit == 1024)
        // Not running: every job accepted stays in flight.
        let accepted = (0..<1024).map { _ in queue.submit {} }
        #expect(accepted.allSatisfy { $0 } && queue.count == 1024, "the 1,024th is still taken")
        #expect(queue.submit {} == false, "the 1,025th is dropped")
        #expect(queue.count == 1024)
    }
}
