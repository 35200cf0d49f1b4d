import Foundation
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// `sky dns` asked by clients nobody here wrote: dig (BIND's) over UDP and TCP, and
/// dnspython's resolver for SRV. Real services register in a real registry; the answers
/// follow it.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DNSTests {
    static let dig = "/usr/bin/dig"

    /// Runs a program to its end; answers its standard output.
    static func output(_ arguments: [String]) async throws -> String {
        try await Command.run(arguments).output
    }

    /// `dig @127.0.0.1 -p PORT ARGUMENTS`, no retries, short waits.
    static func dig(_ port: Int, _ arguments: [String]) async throws -> String {
        try await Self.output([Self.dig, "@127.0.0.1", "-p", "\(port)", "+tries=1", "+time=2"] + arguments)
    }

    struct Cluster {
        let scratch: Scratch
        let east: SkyProcess
        let west: SkyProcess
        let dns: SkyProcess
        let port: Int
        func stop() { for process in [self.east, self.west, self.dns] { process.signal(SIGKILL) } }
    }

    static func cluster() async throws -> Cluster {
        let scratch = try Scratch(copyingRoutes: false)
        let east = try SkyProcess(["service", "uppercase", "--registry", scratch.registry, "--region", "east", "--ttl", "2", "--heartbeat", "0.3"], name: "east", directory: scratch.path)
        let west = try SkyProcess(["service", "uppercase", "--registry", scratch.registry, "--region", "west", "--ttl", "2", "--heartbeat", "0.3"], name: "west", directory: scratch.path)
        _ = try await east.waitForWord(after: "ready at ")
        _ = try await west.waitForWord(after: "ready at ")
        let dns = try SkyProcess(["dns", "--registry", scratch.registry, "--listen", "127.0.0.1:0", "--region", "east"], name: "dns", directory: scratch.path)
        let listening = try await dns.waitForWord(after: "dns listening on ")
        let port = try #require(Int(listening.split(separator: ":").last ?? ""))
        return Cluster(scratch: scratch, east: east, west: west, dns: dns, port: port)
    }

    @Test(.enabled(if: requirement(FileManager.default.isExecutableFile(atPath: DNSTests.dig), test: "DNSTests", "dig (bind9-dnsutils)")))
    func digFindsEveryInstanceOverUDPAndTCPAndAKilledOneLeaves() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stop() }
        let name = "uppercase.production.skydns.local."
        // SRV: one line per instance, "priority weight port target"; east (the server's region) first.
        var lines: [Substring] = []
        #expect(await eventually(within: 5) {
            lines = ((try? await Self.dig(cluster.port, ["+short", "SRV", name])) ?? "").split(separator: "\n")
            return lines.count == 2
        })
        let fields = lines.map { $0.split(separator: " ") }
        #expect(fields.map { $0[0] } == ["10", "20"], "\(lines)")
        #expect(fields[0][3].contains(".east.") && fields[1][3].contains(".west."), "\(lines)")
        // The target's address is in the additional section, and answers an A query itself.
        let full = try await Self.dig(cluster.port, ["SRV", name])
        #expect(full.contains("status: NOERROR") && full.contains("flags: qr aa"), "\(full)")
        let words = full.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(full.contains("ADDITIONAL SECTION") && words.contains(" IN A 127.0.0.1"), "\(full)")
        let target = String(fields[0][3])
        #expect(try await Self.dig(cluster.port, ["+short", "A", target]).trimmingCharacters(in: .whitespacesAndNewlines) == "127.0.0.1")
        // The same over TCP.
        #expect(try await Self.dig(cluster.port, ["+tcp", "+short", "SRV", name]).split(separator: "\n").count == 2)
        // Regions, versions: the labels narrow the answer.
        #expect(try await Self.dig(cluster.port, ["+short", "SRV", "west.any.uppercase.production.skydns.local."]).split(separator: "\n").count == 1)
        #expect(try await Self.dig(cluster.port, ["+short", "SRV", "1.uppercase.production.skydns.local."]).split(separator: "\n").count == 2)
        // NXDOMAIN for a name that matches nothing; an empty NOERROR for another type.
        #expect(try await Self.dig(cluster.port, ["SRV", "nothing.production.skydns.local."]).contains("status: NXDOMAIN"))
        let txt = try await Self.dig(cluster.port, ["TXT", name])
        #expect(txt.contains("status: NOERROR") && txt.contains("ANSWER: 0"), "\(txt)")

        // Killed: the instance leaves the answers once it leaves rotation (its TTL, 2 s).
        cluster.west.signal(SIGKILL)
        #expect(await eventually(within: 8) {
            ((try? await Self.dig(cluster.port, ["+short", "SRV", name])) ?? "").split(separator: "\n").count == 1
        })
        #expect(try await Self.dig(cluster.port, ["+short", "SRV", "west.any.uppercase.production.skydns.local."]).isEmpty)
    }

    @Test(.enabled(if: requirement(FileManager.default.isExecutableFile(atPath: DNSTests.dig), test: "DNSTests", "dig (bind9-dnsutils)")))
    func aLargeAnswerIsTruncatedOverUDPAndWholeOverTCP() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stop() }
        // 30 more instances, added by hand (no heartbeat, so they never expire by TTL).
        for port in 20_001...20_030 {
            let add = try SkyProcess(
                ["nodes", "add", "--service", "uppercase", "--address", "127.0.0.1:\(port)", "--region", "east", "--registry", cluster.scratch.registry],
                name: "add", directory: cluster.scratch.path
            )
            #expect(try await add.waitForExit() == 0)
        }
        let name = "uppercase.production.skydns.local."
        #expect(await eventually(within: 5) {
            ((try? await Self.dig(cluster.port, ["+tcp", "+short", "SRV", name])) ?? "").split(separator: "\n").count == 32
        })
        // Plain UDP, no EDNS: 512 bytes at most, so the TC flag; dig's +ignore keeps that answer.
        let udp = try await Self.dig(cluster.port, ["+noedns", "+ignore", "SRV", name])
        #expect(udp.contains(" tc") && udp.contains("MSG SIZE  rcvd: "), "\(udp)")
        let size = Int(udp.components(separatedBy: "MSG SIZE  rcvd: ").last?.prefix { $0.isNumber } ?? "") ?? 0
        #expect(size > 0 && size <= 512, "\(size)")
        // Without +ignore dig retries over TCP by itself and gets all 32.
        let retried = try await Self.dig(cluster.port, ["+noedns", "SRV", name])
        #expect(retried.contains("ANSWER: 32"), "\(retried)")
        // EDNS0 with a 4096-byte buffer: the server offers 1232 bytes but honours the client's
        // size up to 4096, so this answer fits whole over UDP.
        let edns = try await Self.dig(cluster.port, ["+bufsize=4096", "+ignore", "SRV", name])
        #expect(edns.contains("ANSWER: 32") && !edns.contains(" tc"), "\(edns)")
    }

    @Test func dnspythonResolvesSRVAndMalformedPacketsDoNoHarm() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stop() }
        let script = """
            import json, socket, sys
            import dns.resolver, dns.message, dns.query
            port = int(sys.argv[1])
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            resolver.port = port
            answer = resolver.resolve("uppercase.production.skydns.local.", "SRV")
            records = sorted((r.priority, r.port, r.target.to_text()) for r in answer)
            # Garbage, a truncated header and a response sent as a query: no answer, no harm.
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.5)
            dropped = 0
            for junk in [b"\\x00", b"\\xff" * 40, bytes(12) + b"\\xc0\\x0c\\x00\\x01\\x00\\x01", b"\\x12\\x34\\x81\\x80" + bytes(8)]:
                s.sendto(junk, ("127.0.0.1", port))
                try:
                    s.recvfrom(4096)
                except socket.timeout:
                    dropped += 1
            # And the server still answers.
            again = dns.query.udp(dns.message.make_query("uppercase.production.skydns.local.", "SRV"), "127.0.0.1", port=port, timeout=2)
            print(json.dumps({"records": records, "dropped": dropped, "again": len(again.answer[0]) if again.answer else 0}))
            """
        let path = cluster.scratch.path + "/resolve.py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let output = try await Self.output([StompTests.python, path, "\(cluster.port)"])
        let json = try JSONParser.parse(String(output.split(separator: "\n").last ?? ""))
        let records = json["records"]?.arrayValue ?? []
        #expect(records.count == 2, "\(output)")
        #expect(records.first?.arrayValue?.first?.intValue == 10)
        #expect(json["dropped"]?.intValue == 4, "\(output)")
        #expect(json["again"]?.intValue == 2, "\(output)")
        #expect(cluster.dns.process.isRunning)
    }
}
