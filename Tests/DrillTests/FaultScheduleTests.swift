import Drill
import Testing

@Suite struct FaultScheduleTests {
    @Test func parsesOnceRepeatedAndLastingFaults() throws {
        let schedule = try FaultSchedule.parse("kill:uppercase@30s, suspend:registry@every 60s/10s,restart:router@1m,fill:text@5s")
        #expect(schedule.faults == [
            Fault(action: .kill, target: "uppercase", at: .seconds(30)),
            Fault(action: .suspend, target: "registry", at: .seconds(60), length: .seconds(10), every: .seconds(60)),
            Fault(action: .restart, target: "router", at: .seconds(60)),
            Fault(action: .fill, target: "text", at: .seconds(5), length: FaultSchedule.defaultLength),
        ])
        #expect(schedule.faults[1].description == "suspend:registry@every 60s/10s")
        #expect(schedule.faults[1].starts(within: .seconds(200)) == [.seconds(60), .seconds(120), .seconds(180)])
        #expect(schedule.faults[0].starts(within: .seconds(10)) == [])
        #expect(try FaultSchedule.parse("").faults.isEmpty)
        #expect(try FaultSchedule.parse("kill:*@every30s/2s").faults == [Fault(action: .kill, target: "*", at: .seconds(30), length: .seconds(2), every: .seconds(30))])
    }

    @Test(arguments: [
        ("kill:uppercase", "fault 1 'kill:uppercase': no ACTION:TARGET@WHEN"),
        ("kill:a@1s,explode:b@2s", "fault 2 'explode:b@2s': unknown action 'explode'"),
        ("kill:a@soon", "'soon' after @ is not a time"),
        ("suspend:a@1s/x", "'x' after / is not a duration"),
        ("suspend:a@every 5s/10s", "it lasts 10s but comes back every 5s"),
        ("kill:a b@1s", "the target 'a b' is not a service, route or role name"),
        ("fill:*@1s", "fill takes a route's name"),
    ])
    func refusesWhatDoesNotParseNamingTheFault(text: String, expected: String) {
        #expect {
            try FaultSchedule.parse(text)
        } throws: { error in
            guard let error = error as? DrillError else { return false }
            return error.code == .badSchedule && error.message.contains(expected)
        }
    }
}
