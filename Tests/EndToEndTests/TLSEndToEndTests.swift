import Foundation
import RegistryKit
import SkyLib
import RouteModel
import SkyTestSupport
import Testing

/// TLS and mutual TLS through the real `sky` binary, checked with clients nobody here wrote:
/// curl (`--cacert`, `--cert/--key`) and `openssl s_client` / `openssl verify`.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TLSEndToEndTests {
    /// Runs a command to its end: its exit status and its output (standard output and error).
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await Command.run(arguments)
    }

    /// `curl -s -m 5 ARGUMENTS -w '\n%{http_code}'`: curl's exit status, the HTTP status (0
    /// when there was none) and the body.
    static func curl(_ arguments: [String]) async throws -> (exit: Int32, status: Int, body: String) {
        let result = try await Self.run(["/usr/bin/curl", "-s", "-m", "5", "-w", "\n%{http_code}"] + arguments)
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (result.status, Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// A certificate authority in `directory` with the named certificates issued (valid for
    /// 127.0.0.1 and localhost).
    static func authority(_ directory: String, issuing names: [String]) async throws {
        let made = try await Self.run([SkyProcess.binary, "certs", "init", directory])
        #expect(made.status == 0, "sky certs init: \(made.output)")
        for name in names {
            let issued = try await Self.run([SkyProcess.binary, "certs", "issue", name, "--dir", directory, "--ip", "127.0.0.1", "--dns", "localhost"])
            #expect(issued.status == 0, "sky certs issue \(name): \(issued.output)")
        }
    }

    /// The base64 of the first certificate in PEM `text`.
    static func firstCertificate(in text: String) -> String? {
        guard let start = text.range(of: "-----BEGIN CERTIFICATE-----"), let end = text.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<text.endIndex) else { return nil }
        return text[start.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    }

    /// The certificate the listener on `port` serves, as openssl receives it.
    static func servedCertificate(_ port: String, authority: String) async throws -> String? {
        Self.firstCertificate(in: try await Self.run(["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", authority]).output)
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
    }

    /// `sky certs` makes an authority and a node certificate that openssl verifies, keys mode
    /// 0600; `sky run` with them serves HTTPS, registers https addresses, answers curl with
    /// the CA and is refused by curl without it; openssl shows TLS 1.2 or later, verified.
    @Test func certsFromSkyServeTheInitiatorOverHTTPS() async throws {
        let scratch = try Scratch()
        let tls = scratch.path + "/tls"
        try await Self.authority(tls, issuing: ["node"])
        #expect(Self.mode(tls + "/ca-key.pem") == 0o600)
        #expect(Self.mode(tls + "/node-key.pem") == 0o600)
        let verified = try await Self.run(["/usr/bin/openssl", "verify", "-CAfile", tls + "/ca.pem", tls + "/node.pem"])
        #expect(verified.status == 0 && verified.output.contains(": OK"), "\(verified.output)")
        let again = try await Self.run([SkyProcess.binary, "certs", "init", tls])
        #expect(again.status != 0 && again.output.contains("exists already"), "a second init must not overwrite the authority: \(again.output)")

        let sky = try SkyProcess(
            ["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--tls-cert", tls + "/node.pem", "--tls-key", tls + "/node-key.pem", "--tls-ca", tls + "/ca.pem"],
            directory: scratch.path
        )
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        #expect(base.hasPrefix("https://127.0.0.1:"), "\(base)")

        let answered = try await Self.curl(["--cacert", tls + "/ca.pem", "-X", "POST", base + "/routes/text", "-H", "Content-Type: application/json", "-d", #"{"text":"hello big world"}"#])
        #expect(answered.status == 200 && answered.body.contains("HELLO BIG WORLD"), "\(answered)")
        let untrusted = try await Self.curl([base + "/health"])
        #expect(untrusted.exit == 60 && untrusted.status == 0, "curl without the CA must refuse the certificate: \(untrusted)")
        let plain = try await Self.curl([base.replacingOccurrences(of: "https://", with: "http://") + "/health"])
        #expect(plain.status != 200, "plain HTTP on a TLS listener must not be answered: \(plain)")

        let port = String(base.split(separator: ":").last ?? "")
        let handshake = try await Self.run(["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", tls + "/ca.pem", "-brief"])
        #expect(handshake.output.contains("Protocol version: TLSv1.3") || handshake.output.contains("Protocol version: TLSv1.2"), "\(handshake.output)")
        #expect(handshake.output.contains("Verification: OK"), "\(handshake.output)")
        // TLS 1.1 offered for real (OpenSSL 3 refuses it on its own unless told SECLEVEL=0, so
        // the client's own refusal would prove nothing): the server answers with its
        // protocol_version alert. The same client against OpenSSL's own server speaking 1.1
        // shows that it does offer and complete 1.1.
        let offer = ["/usr/bin/openssl", "s_client", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief"]
        let old = try await Self.run(offer + ["-connect", "127.0.0.1:\(port)", "-CAfile", tls + "/ca.pem"])
        #expect(!old.output.contains("Protocol version: TLSv1.1") && old.output.contains("alert protocol version"), "TLS 1.1 must be refused by the server: \(old.output)")
        let control = try SkyProcess(
            ["s_server", "-accept", "127.0.0.1:0", "-cert", tls + "/node.pem", "-key", tls + "/node-key.pem", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-www"],
            name: "s_server", directory: scratch.path, executable: "/usr/bin/openssl"
        )
        defer { control.signal(SIGKILL) }
        let controlPort = try await control.waitForLine { line in line.hasPrefix("ACCEPT") ? line.split(separator: ":").last.map(String.init) : nil }
        let spoken = try await Self.run(offer + ["-connect", "127.0.0.1:\(controlPort)", "-CAfile", tls + "/ca.pem"])
        #expect(spoken.output.contains("Protocol version: TLSv1.1"), "the client must be able to speak TLS 1.1 for the refusal to mean anything: \(spoken.output)")

        let registry = try await scratch.openRegistry()
        let nodes = try await registry.nodes(matching: NodeQuery())
        #expect(!nodes.isEmpty && nodes.allSatisfy { $0.address.hasPrefix("https://127.0.0.1:") }, "\(nodes.map(\.address))")

        // A renewed certificate serves new connections after SIGHUP, without a restart.
        let before = try await Self.servedCertificate(port, authority: tls + "/ca.pem")
        let issuedFirst = Self.firstCertificate(in: try String(contentsOfFile: tls + "/node.pem", encoding: .utf8))
        #expect(before != nil && before == issuedFirst)
        let renewed = try await Self.run([SkyProcess.binary, "certs", "issue", "node", "--dir", tls, "--ip", "127.0.0.1"])
        #expect(renewed.status == 0, "\(renewed.output)")
        let fresh = Self.firstCertificate(in: try String(contentsOfFile: tls + "/node.pem", encoding: .utf8))
        #expect(fresh != nil && fresh != before)
        sky.signal(SIGHUP)
        #expect(await eventually(within: 10) { (try? await Self.servedCertificate(port, authority: tls + "/ca.pem")) == fresh })
        #expect(sky.stderr.contains("TLS certificate reloaded on SIGHUP"))

        // And when the files change on disk, without a signal.
        let reissued = try await Self.run([SkyProcess.binary, "certs", "issue", "node", "--dir", tls, "--ip", "127.0.0.1"])
        #expect(reissued.status == 0, "\(reissued.output)")
        let third = Self.firstCertificate(in: try String(contentsOfFile: tls + "/node.pem", encoding: .utf8))
        #expect(third != nil && third != fresh)
        #expect(await eventually(within: 15) { (try? await Self.servedCertificate(port, authority: tls + "/ca.pem")) == third })
        #expect(sky.stderr.contains("TLS certificate reloaded on a change of its files"))
        #expect(!sky.stderr.contains("TLS certificate not reloaded"), "a renewal caught between its two files must not be tried")
        sky.signal(SIGTERM)
        #expect(try await sky.waitForExit() == 0)
    }

    /// A router calls a service over mutual TLS; a second instance whose certificate comes
    /// from a foreign authority is refused by the router and left out, so every request is
    /// answered by the first. The services refuse callers without a certificate (curl, and
    /// openssl s_client over TLS 1.2) or with one not named in `--allow-callers`, and answer
    /// the router.
    @Test func aRouterCallsServicesOverMutualTLSAndLeavesOutAForeignCertificate() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        try scratch.writeRoute("shout.yaml", """
            name: shout
            steps:
              - service: uppercase
                retry: { attempts: 3, backoff: 10ms }
            """)
        let tls = scratch.path + "/tls", foreign = scratch.path + "/foreign"
        try await Self.authority(tls, issuing: ["router", "uppercase", "intruder"])
        try await Self.authority(foreign, issuing: ["impostor"])
        func serving(_ folder: String, _ name: String) -> [String] {
            ["--tls-cert", "\(folder)/\(name).pem", "--tls-key", "\(folder)/\(name)-key.pem", "--tls-client-ca", tls + "/ca.pem", "--allow-callers", "router,dashboard"]
        }
        let genuine = try SkyProcess(["service", "uppercase", "--registry", scratch.registry] + serving(tls, "uppercase"), name: "genuine", directory: scratch.path)
        defer { genuine.signal(SIGKILL) }
        let genuineAddress = try await genuine.waitForWord(after: "ready at ")
        let impostor = try SkyProcess(["service", "uppercase", "--registry", scratch.registry] + serving(foreign, "impostor"), name: "impostor", directory: scratch.path)
        defer { impostor.signal(SIGKILL) }
        let impostorAddress = try await impostor.waitForWord(after: "ready at ")
        #expect(genuineAddress.hasPrefix("https://") && impostorAddress.hasPrefix("https://"))

        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry,
             "--tls-cert", tls + "/router.pem", "--tls-key", tls + "/router-key.pem", "--tls-ca", tls + "/ca.pem",
             "--tls-client-cert", tls + "/router.pem", "--tls-client-key", tls + "/router-key.pem"],
            name: "router", directory: scratch.path
        )
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        let client = ["--cacert", tls + "/ca.pem"]
        let asRouter = client + ["--cert", tls + "/router.pem", "--key", tls + "/router-key.pem"]
        // Both instances are in the router's cache before the requests start.
        #expect(await eventually(within: 10) {
            let nodes = (try? await scratch.openRegistry().nodes(matching: NodeQuery(service: "uppercase"))) ?? []
            return nodes.count == 2
        })
        for number in 0..<20 {
            let answer = try await Self.curl(client + ["-X", "POST", base + "/routes/shout", "-H", "Content-Type: application/json", "-d", #"{"text":"call \#(number)"}"#])
            #expect(answer.status == 200 && answer.body.contains("CALL \(number)"), "request \(number): \(answer)")
        }
        let counted = try await Self.curl(asRouter + [genuineAddress + "/debug/vars"])
        let processed = try JSONParser.parse(counted.body)["uppercase-processed"]?.intValue
        #expect(processed == 20, "the genuine instance answered \(String(describing: processed)) of 20: \(counted)")
        #expect(router.stderr.contains("TLS with uppercase at \(impostorAddress)"), "the router names the instance it refused")

        // The services ask callers for a certificate signed by the authority.
        let anonymous = try await Self.curl(client + [genuineAddress + "/health"])
        #expect(anonymous.status == 0 && anonymous.exit != 0, "a caller without a certificate must be refused: \(anonymous)")
        let signed = try await Self.curl(asRouter + [genuineAddress + "/health"])
        #expect(signed.status == 200, "\(signed)")
        // Signed by the same authority, but not a name in --allow-callers: refused and logged.
        let intruder = try await Self.curl(client + ["--cert", tls + "/intruder.pem", "--key", tls + "/intruder-key.pem", genuineAddress + "/health"])
        #expect(intruder.status == 0 && intruder.exit != 0, "a caller not in --allow-callers must be refused: \(intruder)")
        #expect(await eventually(within: 5) { genuine.stderr.contains("caller refused") && genuine.stderr.contains("intruder") })
        let port = String(genuineAddress.split(separator: ":").last ?? "")
        let refused = try await Self.run(["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", tls + "/ca.pem", "-tls1_2", "-brief"])
        #expect(refused.status != 0 && refused.output.lowercased().contains("alert"), "\(refused.output)")
        let accepted = try await Self.run(
            ["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", tls + "/ca.pem", "-cert", tls + "/router.pem", "-key", tls + "/router-key.pem", "-brief"]
        )
        #expect(accepted.output.contains("Verification: OK"), "\(accepted.output)")
    }

    /// A service generated in Python serves TLS from the same variables (`SKYNET_TLS_*`),
    /// registers `https://`, requires the router's client certificate, and answers through it.
    @Test func aGeneratedPythonServiceServesMutualTLS() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let home = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let generate = try SkyProcess(["generate", "service", "greet-py", "--lang", "python"], name: "gen-py", directory: scratch.path, environment: ["SKYNET_HOME": home])
        #expect(try await generate.waitForExit() == 0)
        try scratch.writeRoute("greet.yaml", "name: greet\nsteps:\n  - service: greet-py\n")
        let tls = scratch.path + "/tls"
        try await Self.authority(tls, issuing: ["router", "greet-py"])
        let (python, address) = try await GenerateTests().start(
            "/usr/bin/python3", ["greet_py.py", "--registry", scratch.registry, "--port", "0"], name: "greet-py", in: scratch.path + "/greet-py",
            environment: ["SKYNET_TLS_CERT": tls + "/greet-py.pem", "SKYNET_TLS_KEY": tls + "/greet-py-key.pem", "SKYNET_TLS_CLIENT_CA": tls + "/ca.pem"]
        )
        defer { python.terminate() }
        #expect(address.hasPrefix("https://127.0.0.1:"), "\(address)")
        let anonymous = try await Self.curl(["--cacert", tls + "/ca.pem", address + "/health"])
        #expect(anonymous.status == 0, "a caller without a certificate must be refused: \(anonymous)")

        let router = try SkyProcess(
            ["router", "--routes", "Routes", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--tls-ca", tls + "/ca.pem",
             "--tls-client-cert", tls + "/router.pem", "--tls-client-key", tls + "/router-key.pem"],
            name: "router", directory: scratch.path
        )
        defer { router.signal(SIGKILL) }
        let base = try await router.waitForWord(after: "router ready at ")
        #expect(base.hasPrefix("http://"), "the router itself serves plain HTTP here (no --tls-cert): \(base)")
        let answer = try await HTTP.post("\(base)/routes/greet", #"{"text":"hi"}"#)
        #expect(answer.status == 200 && answer.json["handledBy"] == "greet-py", "\(answer.text)")
    }

    /// `sky run --tls-dev` makes its authority in `.skynet/tls/` once and serves HTTPS with a
    /// localhost certificate from it; a second start reuses both.
    @Test func tlsDevServesHTTPSWithAnAuthorityItMakesOnce() async throws {
        let scratch = try Scratch()
        var authorities: [String] = []
        for round in 0..<2 {
            let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--tls-dev"], name: "dev\(round)", directory: scratch.path)
            defer { sky.signal(SIGKILL) }
            let base = try await sky.waitForWord(after: "HTTP       ")
            #expect(base.hasPrefix("https://127.0.0.1:"), "\(base)")
            let authority = scratch.path + "/.skynet/tls/ca.pem"
            authorities.append(try String(contentsOfFile: authority, encoding: .utf8))
            let health = try await Self.curl(["--cacert", authority, base + "/health"])
            #expect(health.status == 200, "\(health)")
            let byName = try await Self.curl(["--cacert", authority, base.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/health"])
            #expect(byName.status == 200, "the certificate names localhost too: \(byName)")
            // `sky progress` reaches the https node through the registry with the authority,
            // and not without it.
            let progress = try await Command.run([SkyProcess.binary, "progress", "--json", "--registry", scratch.registry, "--tls-ca", authority])
            #expect(progress.status == 0 && progress.output.contains(#""nodes":1"#), "\(progress.output)")
            let untrusted = try await Command.run([SkyProcess.binary, "progress", "--json", "--registry", scratch.registry])
            #expect(untrusted.output.contains(#""nodes":0"#), "\(untrusted.output)")
            sky.signal(SIGTERM)
            #expect(try await sky.waitForExit() == 0)
        }
        #expect(authorities.count == 2 && authorities[0] == authorities[1], "the authority is made once")
    }

    /// The dashboard over HTTPS in headless Chromium: refused while its certificate is not
    /// trusted, shown once the test trusts it (Chromium's SPKI allow-list); the page lists the
    /// route it read from the router's `/debug/stats` over TLS.
    @Test func theDashboardServesHTTPSToChromium() async throws {
        let scratch = try Scratch()
        let sky = try SkyProcess(["run", "--http", "127.0.0.1:0", "--registry", scratch.registry, "--tls-dev"], directory: scratch.path)
        defer { sky.signal(SIGKILL) }
        let base = try await sky.waitForWord(after: "HTTP       ")
        let tls = scratch.path + "/.skynet/tls"
        for _ in 0..<3 {
            let answer = try await Self.curl(["--cacert", tls + "/ca.pem", "-X", "POST", base + "/routes/text", "-H", "Content-Type: application/json", "-d", #"{"text":"a b"}"#])
            #expect(answer.status == 200, "\(answer)")
        }
        let dashboard = try SkyProcess(
            ["dashboard", "--http", "127.0.0.1:0", "--registry", scratch.registry,
             "--tls-cert", tls + "/localhost.pem", "--tls-key", tls + "/localhost-key.pem", "--tls-ca", tls + "/ca.pem"],
            name: "dashboard", directory: scratch.path
        )
        defer { dashboard.signal(SIGKILL) }
        let page = try await dashboard.waitForWord(after: "dashboard at ")
        #expect(page.hasPrefix("https://127.0.0.1:"), "\(page)")
        let spki = try await Self.run(["/bin/sh", "-c", "openssl x509 -in '\(tls)/localhost.pem' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
        let pin = spki.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(spki.status == 0 && pin.count == 44, "\(spki.output)")

        let browser = try Chromium()
        let untrusted = try await browser.dom(of: page)
        #expect(!untrusted.contains(#"data-route="text""#), "Chromium showed the page without trusting its certificate")
        let shown = await eventually(within: 30) {
            // Traffic while the page is read: its route table shows the last seconds' requests.
            _ = try? await Self.curl(["--cacert", tls + "/ca.pem", "-X", "POST", base + "/routes/text", "-H", "Content-Type: application/json", "-d", #"{"text":"a b"}"#])
            let dom = (try? await browser.dom(of: page, flags: ["--ignore-certificate-errors-spki-list=\(pin)"])) ?? ""
            return dom.contains(#"data-route="text""#)
        }
        #expect(shown, "the dashboard did not list route text over HTTPS")
    }

    /// The MongoDB registry over TLS: libmongoc connects through a TLS terminator (socat, with
    /// a certificate from `sky certs`) in front of the MongoDB-wire test server, verifying it
    /// against the URI's `tlsCAFile`; against another authority it refuses, and says why.
    @Test func theMongoRegistryOverTLS() async throws {
        let scratch = try Scratch(copyingRoutes: false)
        let tls = scratch.path + "/tls", foreign = scratch.path + "/foreign"
        try await Self.authority(tls, issuing: ["registry"])
        try await Self.authority(foreign, issuing: [])
        let port = 27_100 + Int(getpid() % 800)
        let terminator = Process()
        terminator.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        terminator.arguments = [
            "OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,cert=\(tls)/registry.pem,key=\(tls)/registry-key.pem,verify=0", "TCP:127.0.0.1:27017",
        ]
        // No stdio of ours: socat's forked children outlive it, and one holding the test
        // runner's output pipe would keep `swift test` waiting for its end.
        terminator.standardInput = FileHandle.nullDevice
        terminator.standardOutput = FileHandle.nullDevice
        terminator.standardError = FileHandle.nullDevice
        try terminator.run()
        // SIGKILL: a child of the test runner inherits its blocked signals, SIGTERM among them.
        defer { kill(terminator.processIdentifier, SIGKILL) }
        #expect(await eventually(within: 10) { (try? await Self.run(["/usr/bin/curl", "-s", "-k", "-m", "1", "https://127.0.0.1:\(port)/"]))?.status != 7 })
        let database = "skytls\(UUID().uuidString.prefix(6).lowercased())"
        let registry = "mongodb://127.0.0.1:\(port)/\(database)?tls=true&tlsCAFile=\(tls)/ca.pem&serverSelectionTimeoutMS=3000"
        let service = try SkyProcess(["service", "uppercase", "--registry", registry], name: "uppercase", directory: scratch.path)
        defer { service.signal(SIGKILL) }
        _ = try await service.waitForWord(after: "ready at ")
        let listed = try await Self.run([SkyProcess.binary, "nodes", "--registry", registry])
        #expect(listed.status == 0 && listed.output.contains("uppercase"), "\(listed.output)")
        let refused = try await Self.run([SkyProcess.binary, "nodes", "--registry", registry.replacingOccurrences(of: tls + "/ca.pem", with: foreign + "/ca.pem")])
        #expect(refused.status != 0 && refused.output.lowercased().contains("tls"), "\(refused.output)")
    }

    /// Bad TLS flags end the process with an error naming the file and the flag.
    @Test func missingOrHalfGivenFilesAreNamed() async throws {
        let scratch = try Scratch()
        let cases: [([String], String)] = [
            (["--tls-cert", scratch.path + "/nope.pem", "--tls-key", scratch.path + "/nope-key.pem"], "--tls-cert \(scratch.path)/nope.pem: no such readable file"),
            (["--tls-key", scratch.path + "/nope-key.pem"], "--tls-key (SKYNET_TLS_KEY) is set without --tls-cert"),
            (["--tls-client-cert", scratch.path + "/x.pem"], "--tls-client-cert (SKYNET_TLS_CLIENT_CERT) is set without --tls-client-key"),
        ]
        for (flags, message) in cases {
            let result = try await Self.run([SkyProcess.binary, "run", "--http", "127.0.0.1:0", "--registry", scratch.registry] + flags)
            #expect(result.status != 0 && result.output.contains(message), "\(flags): \(result.output)")
        }
    }
}
