import Foundation

/// The Swift service scaffold: a SwiftPM package with a handler library, an executable that
/// hosts it (registers, heartbeats, drains), and tests that call the handler and `POST /call`.
enum SwiftTemplate {
    /// This Skynet checkout, for the generated package's path dependency: `SKYNET_HOME`, else
    /// found from the `sky` binary's place in `.build/`, else the working directory.
    static func skynetCheckout() -> String {
        if let home = ProcessInfo.processInfo.environment["SKYNET_HOME"], !home.isEmpty { return home }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let manifest = url.appendingPathComponent("Package.swift").path
            if let text = try? String(contentsOfFile: manifest, encoding: .utf8), text.contains("name: \"Skynet\"") { return url.path }
            url.deleteLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }

    /// The package's files: manifest, handler, `main`, tests and README.
    static func files(name: String, skynetPath: String) -> [(String, String)] {
        let type = ServiceName.typeName(name) + "Handler"
        return [
            ("Package.swift", self.manifest(name: name, type: type, skynetPath: skynetPath)),
            (".gitignore", ".build/\n.build*/\nPackage.resolved\n.swiftpm/\n.skynet/\n"),
            ("Sources/\(type)/\(type).swift", self.handler(name: name, type: type)),
            ("Sources/\(name)/Serve.swift", self.main(name: name, type: type)),
            ("Tests/\(type)Tests/\(type)Tests.swift", self.tests(name: name, type: type)),
            ("routes/\(name).yaml", "# POST /routes/\(name) through a router serving this folder (sky router --routes routes)\nname: \(name)\nsteps:\n  - service: \(name)\n    retry: { attempts: 2, backoff: 20ms, max: 200ms }\n"),
            ("README.md", self.readme(name: name, type: type)),
        ]
    }

    /// What to run next, printed after generating.
    static func nextSteps(name: String, folder: String) -> String {
        """
        Next:
          cd \(folder) && swift test                      # the handler's and the live /call test
          swift run \(name) --registry sqlite:$HOME/.skynet/registry.sqlite --port 0
          # then put '- service: \(name)' in a route (see routes/\(name).yaml)
        """
    }

    /// A manifest depending on this checkout by path (a published Skynet would be a URL and
    /// version), with a handler library, an executable and a test target.
    static func manifest(name: String, type: String, skynetPath: String) -> String {
        """
        // swift-tools-version: 6.1
        import PackageDescription

        let package = Package(
            name: "\(name)",
            platforms: [.macOS(.v15)],
            dependencies: [
                // Skynet, from the checkout that generated this package. From a published copy:
                // .package(url: "https://github.com/OWNER/skynet.git", from: "0.1.0"),
                .package(name: "Skynet", path: "\(skynetPath)"),
                .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
                .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
                .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
                .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
            ],
            targets: [
                // The handler: what the service does. Edit \(type).swift.
                .target(
                    name: "\(type)",
                    dependencies: [.product(name: "SkyLib", package: "Skynet")],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                ),
                // The process: serves POST /call, registers, heartbeats, drains on SIGTERM.
                .executableTarget(
                    name: "\(name)",
                    dependencies: [
                        "\(type)",
                        .product(name: "NodeRuntime", package: "Skynet"),
                        .product(name: "RegistryKit", package: "Skynet"),
                        .product(name: "Services", package: "Skynet"),
                        .product(name: "SkyLib", package: "Skynet"),
                        .product(name: "ArgumentParser", package: "swift-argument-parser"),
                        .product(name: "Logging", package: "swift-log"),
                        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                    ],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                ),
                .testTarget(
                    name: "\(type)Tests",
                    dependencies: [
                        "\(type)",
                        .product(name: "Services", package: "Skynet"),
                        .product(name: "SkyLib", package: "Skynet"),
                        .product(name: "Logging", package: "swift-log"),
                        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                        .product(name: "NIOPosix", package: "swift-nio"),
                    ],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                ),
            ]
        )

        """
    }

    /// The handler: the one file a user edits.
    static func handler(name: String, type: String) -> String {
        """
        import SkyLib

        /// The \(name) service.
        ///
        /// `request.payload` is the document (any JSON value); `request.meta`, `request.trace`
        /// and `request.deadline` say where it came from and how long the caller waits. Return
        /// the output document; throw `SkyError(.badRequest, "…")` for bad input (not retried) or
        /// `SkyError(.serviceError, "…", retryable: true)` when another try may succeed.
        public struct \(type): ServiceHandler {
            /// Creates a `SwiftTemplate` with the defaults.
            public init() {}

            public func handle(_ request: RequestEnvelope) async throws -> ServiceResponse {
                guard case .object(var document) = request.payload else {
                    throw SkyError(.badRequest, "\(name) expects a JSON object, not \\(request.payload.typeName)", service: "\(name)")
                }
                // Until edited: the input document with one field added.
                document["handledBy"] = "\(name)"
                return ServiceResponse(payload: .object(document))
            }
        }

        """
    }

    /// The executable: the same flags as `sky service`, and a ``ServiceNode`` hosting the handler.
    static func main(name: String, type: String) -> String {
        """
        import \(type)
        import ArgumentParser
        import Foundation
        import Logging
        import NodeRuntime
        import RegistryKit
        import ServiceLifecycle
        import Services
        import SkyLib

        /// Hosts \(type): the same flags as `sky service`.
        @main
        struct Serve: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "\(name)", abstract: "The \(name) service.")

            @Option(help: "Registry: sqlite:PATH or mongodb://HOST:PORT/DB (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).")
            var registry: String?
            @Option(help: "Interface to listen on.") var host: String = "127.0.0.1"
            @Option(help: "Port to listen on (0: any free one).") var port: Int = 0
            @Option(help: "Version to register.") var version: String = "1.0.0"
            @Option(help: "Region to register.") var region: String = "local"
            @Option(help: "Environment to register (a label of its DNS names).")
            var environment: String = ProcessInfo.processInfo.environment["SKYNET_ENVIRONMENT"] ?? "production"
            @Option(help: "Seconds without a heartbeat before the reaper removes this node.") var ttl: Double = 3
            @Option(help: "Seconds between heartbeats.") var heartbeat: Double = 1

            func run() async throws {
                // Logging, metrics, the registry and this process's stop/restart, set up once;
                // settings from the environment (SKYNET_TOKEN, SKYNET_HTTP_*, …) read here only.
                let environment = ProcessInfo.processInfo.environment
                let context = try await NodeContext.bootstrap(
                    logLevel: .info, registry: RegistryAddress.resolve(flag: self.registry, environment: environment), region: self.region,
                    environment: self.environment, token: environment["SKYNET_TOKEN"], variables: environment
                )
                var configuration = ServiceNode.Configuration()
                configuration.listen = ListenAddress(host: self.host, port: self.port)
                configuration.ttl = self.ttl
                configuration.heartbeat = .milliseconds(Int64(self.heartbeat * 1000))
                // Serves /call, registers, heartbeats; `sky stop` / `sky restart` reach it through
                // the registry. Until SIGTERM or `sky stop`; after `sky restart`, the process runs
                // itself again.
                let node = ServiceNode(
                    definition: ServiceDefinition(name: "\(name)", version: self.version, handler: \(type)()), configuration: configuration, context: context
                )
                try await node.run { address in
                    FileHandle.standardOutput.write(Data("service \(name) \\(self.version) ready at \\(address) node \\(node.host.nodeID)\\n".utf8))
                }
            }
        }

        """
    }

    /// The handler's tests, and a live `POST /call` over a socket as a router would make it.
    static func tests(name: String, type: String) -> String {
        """
        import Foundation
        import Logging
        import NIOPosix
        import ServiceLifecycle
        import Services
        import SkyLib
        import Testing
        #if canImport(FoundationNetworking)
        import FoundationNetworking
        #endif

        @testable import \(type)

        struct \(type)Tests {
            @Test func answersTheDocumentWithHandledBy() async throws {
                let response = try await \(type)().handle(RequestEnvelope(route: "test", payload: ["text": "hi"]))
                #expect(response.payload == ["text": "hi", "handledBy": "\(name)"])
            }

            @Test func rejectsADocumentThatIsNotAnObject() async throws {
                await #expect(throws: SkyError.self) { try await \(type)().handle(RequestEnvelope(route: "test", payload: [1, 2])) }
            }

            /// The real server: POST /call over a socket, as a router would.
            @Test func servesPostCall() async throws {
                let host = ServiceHost(
                    definition: ServiceDefinition(name: "\(name)", handler: \(type)()), registry: nil, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                    logger: Logger(label: "test")
                )
                let group = ServiceGroup(services: [host], logger: Logger(label: "test"))
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    let address = try await host.waitUntilReady()
                    var request = URLRequest(url: URL(string: "http://\\(address)/call")!)
                    request.httpMethod = "POST"
                    request.httpBody = Data(JSONWriter.string(RequestEnvelope(route: "test", payload: ["n": 1]).json).utf8)
                    let (data, response) = try await URLSession.shared.data(for: request)
                    #expect((response as? HTTPURLResponse)?.statusCode == 200)
                    #expect(try JSONParser.parse(data) == ["payload": ["n": 1, "handledBy": "\(name)"]])
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                }
            }
        }

        """
    }

    /// Its README: how to run, test and route it.
    static func readme(name: String, type: String) -> String {
        """
        # \(name)

        A Skynet service in Swift. The handler is `Sources/\(type)/\(type).swift`; the process
        (`Sources/\(name)/Serve.swift`) serves the Skynet protocol (`POST /call`, `GET /health`,
        `GET /debug/vars`), registers in the registry, heartbeats every second, and on SIGTERM
        drains, finishes what is in flight and deregisters.

        ```sh
        swift test                                   # handler test + a live POST /call test
        swift run \(name) --registry sqlite:PATH/TO/.skynet/registry.sqlite --port 0
        ```

        Flags: `--registry` (or `SKYNET_REGISTRY`), `--host`, `--port`, `--version`, `--region`,
        `--ttl`, `--heartbeat`; `SKYNET_TOKEN` when the cluster uses one.

        Put it in a route (`routes/\(name).yaml`):

        ```yaml
        name: \(name)
        steps:
          - service: \(name)
        ```

        Until you edit it, the handler answers the document it gets with `"handledBy": "\(name)"`
        added. The protocol is described in Skynet's `docs/PROTOCOL.md`.

        """
    }
}
