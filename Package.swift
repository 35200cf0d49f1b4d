// swift-tools-version: 6.1
import PackageDescription

// Upcoming features as in Hummingbird: explicit existentials, imports that say what they expose.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let log = Target.Dependency.product(name: "Logging", package: "swift-log")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let httpTypes = Target.Dependency.product(name: "HTTPTypes", package: "swift-http-types")
let httpClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")

let package = Package(
    name: "Skynet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SkyLib", targets: ["SkyLib"]),
        .library(name: "RouteModel", targets: ["RouteModel"]),
        .library(name: "RegistryKit", targets: ["RegistryKit"]),
        .library(name: "RegistrySQLite", targets: ["RegistrySQLite"]),
        .library(name: "RegistryMongo", targets: ["RegistryMongo"]),
        .library(name: "RegistryMemory", targets: ["RegistryMemory"]),
        .library(name: "NodeRuntime", targets: ["NodeRuntime"]),
        .library(name: "Routing", targets: ["Routing"]),
        .library(name: "Initiators", targets: ["Initiators"]),
        .library(name: "Services", targets: ["Services"]),
        .library(name: "Reaper", targets: ["Reaper"]),
        .library(name: "Discovery", targets: ["Discovery"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .executable(name: "sky", targets: ["sky"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
    ],
    targets: [
        // libmongoc/libbson from Debian (libmongoc-dev libbson-dev), found with pkg-config.
        .systemLibrary(name: "CMongoc", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev", "libbson-dev"])]),
        // libedit from Debian (libedit-dev): line editing for `sky cli`.
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        // The shared words only: envelope, errors, JSON, ids, deadlines, trace context,
        // counters, logging. No database, no HTTP server, no process control, no YAML.
        .target(
            name: "SkyLib",
            dependencies: [
                log, nioCore, httpTypes,
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
            ],
            swiftSettings: swiftSettings
        ),
        // The route file: its model, YAML parser, conditions and test files, and the runner
        // protocol initiators hand requests to. Apart from SkyLib so that modules that never
        // read a route (TLS, Telemetry, the drivers) do not link Yams.
        .target(name: "RouteModel", dependencies: ["SkyLib", .product(name: "Yams", package: "Yams")], swiftSettings: swiftSettings),
        // The registry's roles (node directory, event log, span store, leases, route store,
        // command queue), node records, the cache, node presence and remote commands. No driver:
        // as FluentKit keeps apart from its drivers, only the node runtime, `sky` and tests pick one.
        .target(name: "RegistryKit", dependencies: ["SkyLib", log, lifecycle], swiftSettings: swiftSettings),
        // The embedded default: one SQLite file (GRDB, WAL) shared by the processes of one host.
        .target(name: "RegistrySQLite", dependencies: ["RegistryKit", "SkyLib", log, .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: swiftSettings),
        // Many hosts: MongoDB (libmongoc through CMongoc, blocking calls on a thread pool).
        .target(name: "RegistryMongo", dependencies: ["RegistryKit", "SkyLib", "CMongoc", log, nioPosix], swiftSettings: swiftSettings),
        // In this process's memory: unit tests and `sky route test`.
        .target(name: "RegistryMemory", dependencies: ["RegistryKit", "SkyLib"], swiftSettings: swiftSettings),
        // TLS: a process's certificates for its listeners and its calls (reloadable), and a small
        // certificate authority for development (`sky certs`).
        .target(
            name: "TLS",
            dependencies: [
                "SkyLib", .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every process serves over HTTP: /health, /debug/vars, /metrics, the token, JSON
        // answers, listener limits. Apart from SkyLib so the shared words need no HTTP server.
        .target(
            name: "AdminHTTP",
            dependencies: [
                "SkyLib", "TLS", hummingbird, .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                httpTypes, log, nioCore, nioHTTP1, lifecycle,
            ],
            swiftSettings: swiftSettings
        ),
        // Route execution (Sources/Router). Named Routing, not Router: a module named Router
        // shadows Hummingbird's Router type in every file that imports both.
        .target(
            name: "Routing",
            dependencies: [
                "SkyLib", "RouteModel", "RegistryKit", "TLS", httpClient, log, nioCore, nioPosix, nioHTTP1, lifecycle, .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Router",
            swiftSettings: swiftSettings
        ),
        .target(name: "Initiators", dependencies: ["SkyLib", "RouteModel", "AdminHTTP", "TLS", .product(name: "NIOSSL", package: "swift-nio-ssl"), hummingbird, httpTypes, log, nioCore, nioPosix, lifecycle], swiftSettings: swiftSettings),
        .target(name: "Services", dependencies: ["SkyLib", "RegistryKit", "AdminHTTP", "TLS", hummingbird, httpTypes, log, nioCore, nioPosix, lifecycle], swiftSettings: swiftSettings),
        .target(name: "Reaper", dependencies: ["SkyLib", "RegistryKit", "TLS", httpClient, log, nioCore, nioHTTP1, lifecycle], swiftSettings: swiftSettings),
        // `sky dns`: the registry's nodes as DNS SRV and A/AAAA records (our own codec over NIO).
        .target(name: "Discovery", dependencies: ["SkyLib", "RegistryKit", log, nioCore, nioPosix, lifecycle], swiftSettings: swiftSettings),
        // What leaves the process for observability: spans and metrics to a collector over
        // OTLP/HTTP (our own small protobuf writer), and the Prometheus backend `/metrics` shows.
        // The node picks the metrics backends here; the libraries record through swift-metrics.
        .target(
            name: "Telemetry",
            dependencies: [
                "SkyLib", httpClient, log, nioCore, nioHTTP1, lifecycle, .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The node runtime: assembles the roles into a running node (what `sky run`, `sky router`,
        // `sky initiator` start), opens a registry by address (the one place that links both
        // drivers), and owns the process: signals, graceful shutdown, stop and restart on command.
        .target(
            name: "NodeRuntime",
            dependencies: [
                "SkyLib", "RouteModel", "RegistryKit", "RegistrySQLite", "RegistryMongo", "AdminHTTP", "Routing", "Initiators", "Services", "Reaper", "TLS",
                "Telemetry", log, lifecycle, hummingbird, httpTypes, nioCore, nioPosix, httpClient, .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // `sky daemon`: keeps the programs of one host running.
        .target(
            name: "Daemon",
            dependencies: [
                "SkyLib", "RegistryKit", log, lifecycle, .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"), .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // `sky cli`: the interactive shell's grammar, completion and line editing.
        .target(name: "Shell", dependencies: ["CEditLine"], swiftSettings: swiftSettings),
        .target(
            name: "Dashboard",
            dependencies: ["SkyLib", "RouteModel", "RegistryKit", "AdminHTTP", "TLS", hummingbird, httpClient, log, nioCore, nioHTTP1, lifecycle],
            swiftSettings: swiftSettings
        ),
        // `sky drill`: load and a fault schedule on a live cluster, every input accounted for.
        .target(
            name: "Drill",
            dependencies: [
                "SkyLib", "RouteModel", "RegistryKit", "Initiators", httpClient, nioCore, nioPosix, nioHTTP1,
            ],
            swiftSettings: swiftSettings
        ),
        // The one tool: parses arguments and hands them to the node runtime and the modules.
        .executableTarget(
            name: "sky",
            dependencies: [
                "SkyLib", "RouteModel", "RegistryKit", "RegistryMemory", "NodeRuntime", "AdminHTTP", "Routing", "Initiators", "Services", "Reaper", "Dashboard", "Daemon", "Shell", "Discovery", "TLS", "Telemetry", "Drill",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), httpClient, nioCore, nioHTTP1,
                log, lifecycle,
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets (polling with a deadline).
        .target(name: "SkyTestSupport", dependencies: ["SkyLib", nioCore, nioPosix], path: "Tests/SkyTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "RouteModelTests", dependencies: ["RouteModel", "SkyLib", "SkyTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SkyLibTests", dependencies: ["SkyLib", "SkyTestSupport", nioCore, nioPosix, log], swiftSettings: swiftSettings),
        // One conformance suite, run against both drivers; the cache, presence and span recorder.
        .testTarget(
            name: "RegistryTests",
            dependencies: ["RouteModel", "RegistryKit", "RegistrySQLite", "RegistryMongo", "RegistryMemory", "SkyLib", "SkyTestSupport", log, lifecycle],
            swiftSettings: swiftSettings
        ),
        // A whole node in-process on an SQLite registry: requests, route reloads, stop.
        .testTarget(
            name: "NodeRuntimeTests",
            dependencies: ["RouteModel", "NodeRuntime", "Initiators", "Routing", "Services", "Reaper", "RegistryKit", "RegistrySQLite", "RegistryMemory", "SkyLib", "SkyTestSupport", httpClient, log, nioCore, nioHTTP1, lifecycle],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AdminHTTPTests",
            dependencies: ["AdminHTTP", "SkyLib", "SkyTestSupport", log, hummingbird, httpTypes, nioCore, .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "RoutingTests", dependencies: ["RouteModel", "Routing", "SkyLib", "RegistryKit", "RegistrySQLite", "RegistryMemory", "SkyTestSupport", nioCore, log, lifecycle], path: "Tests/RouterTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "InitiatorsTests",
            dependencies: [
                "RouteModel", "Initiators", "SkyLib", "SkyTestSupport", hummingbird, httpTypes, log, nioCore,
                .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ServicesTests", dependencies: ["RouteModel", "Services", "Routing", "SkyLib", "RegistryKit", "RegistrySQLite", "SkyTestSupport", httpClient, log, nioCore, nioHTTP1, lifecycle], swiftSettings: swiftSettings),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "SkyLib", "RegistryKit", log], swiftSettings: swiftSettings),
        .testTarget(name: "ShellTests", dependencies: ["Shell"], swiftSettings: swiftSettings),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "SkyLib"], swiftSettings: swiftSettings),
        .testTarget(name: "DrillTests", dependencies: ["Drill", "SkyLib", "RouteModel"], swiftSettings: swiftSettings),
        .testTarget(name: "DashboardTests", dependencies: ["RouteModel", "Dashboard", "AdminHTTP", "SkyLib", "RegistryKit", "RegistryMemory", "SkyTestSupport", httpClient, log], swiftSettings: swiftSettings),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "SkyLib", "SkyTestSupport", log, .product(name: "CoreMetrics", package: "swift-metrics")], swiftSettings: swiftSettings),
        .testTarget(name: "DiscoveryTests", dependencies: ["Discovery", "SkyLib", "RegistryKit", "RegistrySQLite", "SkyTestSupport", log, nioCore, nioPosix, lifecycle], swiftSettings: swiftSettings),
        .testTarget(name: "ReaperTests", dependencies: ["Reaper", "SkyLib", "RegistryKit", "RegistrySQLite", log, nioCore, lifecycle], swiftSettings: swiftSettings),
        // Start the real `sky` binary and talk to it over sockets.
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["RouteModel", "SkyLib", "RegistryKit", "RegistrySQLite", "RegistryMongo", "SkyTestSupport", httpClient, nioCore, nioHTTP1, .product(name: "Subprocess", package: "swift-subprocess")],
            // Helpers in Python the tests run with the services' venv (OpenTelemetry's own
            // propagator, an OTLP receiver on the official protobuf definitions).
            exclude: ["Python"],
            swiftSettings: swiftSettings
        ),
    ]
)

// Benchmarks are built only when asked for (`make bench` sets SKYNET_BENCHMARKS=1), so they
// never slow the normal build. Peers built in the same run give the ratios in BENCHMARKS.md.
if Context.environment["SKYNET_BENCHMARKS"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "HelloServer",
            dependencies: [hummingbird],
            path: "Benchmarks/HelloServer",
            swiftSettings: swiftSettings
        )
    )
    package.targets.append(
        .executableTarget(
            name: "PlainHops",
            dependencies: ["SkyLib", hummingbird, httpClient, nioCore, nioHTTP1, nioPosix],
            path: "Benchmarks/PlainHops",
            swiftSettings: swiftSettings
        )
    )
    package.products.append(.executable(name: "hello-server", targets: ["HelloServer"]))
    package.products.append(.executable(name: "plain-hops", targets: ["PlainHops"]))
}
