import Foundation
import SkyLib
import SkyTestSupport
import Testing

/// Mutated request envelopes and JSON: every case either parses or fails with our typed error
/// and a message that says where; none crashes or hangs. (Route files: RouteModelTests.)
@Suite struct FuzzTests {
    static let envelope = #"""
        {"id":"r-1","route":"text","step":"uppercase","payload":{"text":"héllo \"big\" world","n":[1,2.5e3,true,null]},
         "meta":{"source":"http"},"trace":{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","sampled":true},
         "deadline":1795419115000,"attempt":2}
        """#

    @Test func mutatedEnvelopesParseOrFailWithAReason() {
        var mutator = Mutator(seed: 0x5EED_0002)
        for index in 0..<Mutator.cases(default: 3000) {
            let bytes = mutator.mutate(Array(Self.envelope.utf8))
            let json: JSONValue
            do {
                json = try JSONParser.parse(bytes)
            } catch {
                #expect(error.description.contains("line"), "case \(index): \(error)")
                continue
            }
            do {
                let envelope = try RequestEnvelope(json: json)
                // What parses must survive a round trip.
                #expect(try RequestEnvelope(json: envelope.json) == envelope, "case \(index)")
            } catch {
                #expect(!error.message.isEmpty, "case \(index)")
            }
        }
    }

    @Test func deeplyNestedJSONIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }
}
