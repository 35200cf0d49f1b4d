import NIOCore
import NIOPosix
import SkyLib
import SkyTestSupport
import Testing

@Suite struct DeadlineWatchdogTests {
    let watchdog = DeadlineWatchdog(eventLoop: MultiThreadedEventLoopGroup.singleton.any())

    @Test func wakesWaitersInDeadlineOrder() async throws {
        let order = Locked<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Registered latest-first, so each new waiter re-arms the timer earlier.
            for index in [3, 2, 1] {
                group.addTask {
                    try await self.watchdog.sleep(until: .now() + .milliseconds(Int64(20 * index)))
                    order.withLock { $0.append(index) }
                }
            }
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 } == [1, 2, 3])
        #expect(self.watchdog.count == 0)
    }

    @Test func doesNotWakeBeforeTheDeadline() async throws {
        let deadline = NIODeadline.now() + .milliseconds(30)
        try await self.watchdog.sleep(until: deadline)
        #expect(NIODeadline.now() >= deadline)
    }

    @Test func aPassedDeadlineReturnsAtOnce() async throws {
        try await self.watchdog.sleep(until: .now() - .seconds(1))
        #expect(self.watchdog.count == 0)
    }

    @Test func cancellationThrowsAndForgetsTheWaiter() async throws {
        let task = Task { try await self.watchdog.sleep(until: .now() + .seconds(60)) }
        #expect(await eventually { self.watchdog.count == 1 })
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(self.watchdog.count == 0)
    }

    @Test func manyFinishedRacesLeaveNothingBehind() async throws {
        // 5,000 deadline races whose work wins: every waiter must be gone afterwards, and a
        // later short deadline must still fire (the timer was not lost among dead entries).
        for _ in 0..<5_000 {
            _ = try await withDeadline(.now() + .seconds(30), watchdog: self.watchdog) { 1 }
        }
        #expect(self.watchdog.count == 0)
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.now() + .milliseconds(20), watchdog: self.watchdog) {
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
    }
}
