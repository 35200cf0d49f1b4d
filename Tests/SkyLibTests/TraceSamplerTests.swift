import SkyLib
import Testing

/// The trace rate README.md states (100 new traces a second unless `SKYNET_TRACE_PER_SECOND`
/// says otherwise), held at that value: a burst of 100 is all traced, the 101st is not.
struct TraceSamplerTests {
    @Test func theDefaultIsAHundredASecond() {
        #expect(TraceSampler.fromEnvironment([:]).perSecond == 100)
        #expect(TraceSampler.fromEnvironment(["SKYNET_TRACE_PER_SECOND": "5"]).perSecond == 5)
    }

    @Test func aBurstOfAHundredIsTracedAndTheNextIsNot() {
        let sampler = TraceSampler.fromEnvironment([:])
        // 101 draws take microseconds: the bucket refills by far less than one trace meanwhile.
        let sampled = (0..<101).map { _ in sampler.sample() }
        #expect(sampled.prefix(100).allSatisfy { $0 }, "the first 100 are traced")
        #expect(sampled.last == false, "the 101st within the second is not")
        #expect(sampler.root(forced: true).sampled, "a forced trace is recorded whatever the rate")
    }

    /// Rates far below one a second (or far above anything real) still sample sanely: the
    /// interval between traces is bounded, so the clock arithmetic cannot overflow.
    @Test func extremeRatesNeitherTrapNorFlood() {
        let rare = TraceSampler(perSecond: 1e-12)
        #expect(rare.sample(), "the first trace of a quiet process is taken")
        #expect(!rare.sample(), "the next waits its interval")
        let dense = TraceSampler(perSecond: 1e12)
        #expect((0..<1000).allSatisfy { _ in dense.sample() })
    }
}
