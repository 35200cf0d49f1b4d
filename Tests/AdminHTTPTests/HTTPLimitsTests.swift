import AdminHTTP
import Testing

/// The listener limits README.md and SECURITY.md state are the defaults, and a
/// `SKYNET_HTTP_*` value sets the very field the default sits in (so the end-to-end tests,
/// which run at small configured values, test the same code path).
struct HTTPLimitsTests {
    @Test func theDefaultsAreTheStatedOnes() {
        let limits = HTTPLimits()
        #expect(limits.idleTimeout == .seconds(75))
        #expect(limits.requestTimeout == .seconds(30))
        #expect(limits.maxConnections == 4096)
        #expect(HTTPLimits(environment: [:]) == limits)
    }

    @Test func theEnvironmentSetsTheSameFields() {
        let limits = HTTPLimits(environment: ["SKYNET_HTTP_IDLE_TIMEOUT": "4", "SKYNET_HTTP_REQUEST_TIMEOUT": "2.5", "SKYNET_HTTP_MAX_CONNECTIONS": "50"])
        #expect(limits.idleTimeout == .seconds(4) && limits.requestTimeout == .milliseconds(2500) && limits.maxConnections == 50)
        // Nonsense is ignored, the default kept.
        let ignored = HTTPLimits(environment: ["SKYNET_HTTP_IDLE_TIMEOUT": "-1", "SKYNET_HTTP_REQUEST_TIMEOUT": "soon", "SKYNET_HTTP_MAX_CONNECTIONS": "0"])
        #expect(ignored == HTTPLimits())
    }
}
