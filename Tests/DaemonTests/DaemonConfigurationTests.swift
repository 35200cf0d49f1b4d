import Daemon
import SkyLib
import Testing

struct DaemonConfigurationTests {
    @Test func builtInsAndCommandsAreRead() throws {
        let configuration = try DaemonConfiguration.parse(yaml: """
            services:
              - name: uppercase
                instances: 2
                flags: ["--ttl", "2"]
              - name: greet
                command: ["python3", "greet.py", "--port", "0"]
            """, file: "host.yaml")
        #expect(configuration.programs == [
            .init(name: "uppercase", instances: 2, flags: ["--ttl", "2"]),
            .init(name: "greet", command: ["python3", "greet.py", "--port", "0"]),
        ])
    }

    @Test func mistakesNameTheFileAndLine() {
        let cases: [(String, String)] = [
            ("services: []", "host.yaml:1: needs a non-empty list `services:`"),
            ("services:\n  - name: a\n    instances: 0", "host.yaml:3: `instances:` of a must be 1 to 64"),
            ("services:\n  - name: a\n    comand: [x]", "host.yaml:2: unknown field `comand`"),
            ("services:\n  - instances: 2", "host.yaml:2: a service needs `name:`"),
            ("services:\n  - name: a\n    command: python3 x.py", "host.yaml:3: `command:` of a must be a list of strings"),
        ]
        for (yaml, expected) in cases {
            #expect(throws: SkyError.self) { try DaemonConfiguration.parse(yaml: yaml, file: "host.yaml") }
            do {
                _ = try DaemonConfiguration.parse(yaml: yaml, file: "host.yaml")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
