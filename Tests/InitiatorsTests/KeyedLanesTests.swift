import Foundation
import SkyLib
import SkyTestSupport
import Testing

@testable import Initiators

/// The lanes themselves (the end-to-end tests in `OrderedLanesTests` run them in `sky run`).
@Suite(.timeLimit(.minutes(1)))
struct KeyedLanesTests {
    /// Tickets of one key get their turn in the order taken, each once the one before left; a
    /// lane goes away once empty, so memory is one entry per key in flight.
    @Test func oneKeyRunsInTicketOrderAndEmptyLanesAreForgotten() async throws {
        let lanes = KeyedLanes()
        let tickets = (0..<20).map { _ in lanes.reserve("A") } + [lanes.reserve("B")]
        #expect(lanes.count == 2)
        let order = Locked<[Int]>([])
        await withTaskGroup(of: Void.self) { group in
            // Started backwards: the lanes, not the start order, decide.
            for ticket in tickets.reversed() {
                group.addTask {
                    await lanes.wait(for: ticket)
                    if ticket.key == "A" { order.withLock { $0.append(ticket.number) } }
                    lanes.leave(ticket)
                }
            }
        }
        #expect(order.withLock { $0 } == Array(0..<20))
        #expect(lanes.count == 0)
    }

    /// A ticket whose wait is cancelled (a stop past the drain limit) leaves without running:
    /// its place is skipped, and the tickets behind it still get their turn.
    @Test func aCancelledWaitIsSkipped() async throws {
        let lanes = KeyedLanes()
        let first = lanes.reserve("A")
        let second = lanes.reserve("A")
        let third = lanes.reserve("A")
        let waiting = Task {
            await lanes.wait(for: second)
            return lanes.isTurn(of: second)
        }
        waiting.cancel()
        #expect(await waiting.value == false)
        lanes.leave(second)
        lanes.leave(first)
        #expect(lanes.isTurn(of: third))
        await lanes.wait(for: third)
        lanes.leave(third)
        #expect(lanes.count == 0)
    }
}
