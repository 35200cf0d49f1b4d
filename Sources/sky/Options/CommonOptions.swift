import ArgumentParser
import Foundation
import Logging
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime
import TLS
import Telemetry

/// Flags every long-running role takes.
struct CommonOptions: ParsableArguments {
    /// Resolved with `SKYNET_REGISTRY` (or `SKYNET_REGISTRY_FILE`, for an address with a password)
    /// by ``RegistryAddress/resolve(flag:)``, so the flag always wins and a secret can stay out of
    /// argv.
    @Option(help: "Registry address: sqlite:PATH or mongodb://HOST:PORT/DB (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).")
    var registry: String?

    /// `info` unless told: one line per start, stop, reload and failure, none per request.
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (SIGUSR1 raises it, SIGUSR2 lowers it).")
    var logLevel: String = ProcessInfo.processInfo.environment["SKYNET_LOG_LEVEL"] ?? "info"

    /// `local` unless told: routers prefer instances in their own region, and one region is all a
    /// single host has.
    @Option(help: "Region this node is in; routers prefer instances in their own region.")
    var region: String = ProcessInfo.processInfo.environment["SKYNET_REGION"] ?? "local"

    /// `production` unless told: a label of the node's DNS names (`sky dns`), so staging and
    /// production can share a registry without answering for each other.
    @Option(help: "Environment this node belongs to (production, staging …); a label of its DNS names (sky dns).")
    var environment: String = ProcessInfo.processInfo.environment["SKYNET_ENVIRONMENT"] ?? "production"

    /// With `--tls-key`, every listener of the process serves TLS; one certificate for all, since a
    /// node is one identity to its callers.
    @Option(name: .customLong("tls-cert"), help: "PEM certificate every listener of this process serves over TLS (default: $SKYNET_TLS_CERT); its address then says https.")
    var tlsCertificate: String?

    /// Read once at start and again when the file changes, so a renewed key needs no restart.
    @Option(name: .customLong("tls-key"), help: "PEM key of --tls-cert (default: $SKYNET_TLS_KEY).")
    var tlsKey: String?

    /// `--tls-ca`, `--tls-client-cert`, `--tls-client-key`: what a process that calls nodes
    /// over TLS needs (`sky progress` takes the same group).
    @OptionGroup var tlsClient: TLSClientOptions

    /// Set, the listeners ask for client certificates and refuse a connection without one signed by
    /// this authority: mutual TLS, for clusters where the network is not trusted.
    @Option(name: .customLong("tls-client-ca"), help: "Require client certificates signed by this PEM authority on every listener: mutual TLS (default: $SKYNET_TLS_CLIENT_CA).")
    var tlsClientAuthority: String?

    /// Names matched against a client certificate's common name and DNS names: the authority says
    /// who someone is, this says who may call.
    @Option(name: .customLong("allow-callers"), help: "With --tls-client-ca: only clients whose certificate has one of these names (common or DNS name, comma-separated) may call (default: $SKYNET_ALLOW_CALLERS).")
    var allowCallers: String?

    /// Spans go to the registry always (for `sky trace` and the dashboard) and, with this, to a
    /// collector too; the standard variable is honoured so existing deployments need no new flag.
    @Option(name: .customLong("otlp"), help: "Send spans to this OpenTelemetry collector over OTLP/HTTP, e.g. http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT).")
    var otlp: String?

    /// 20 s by default: longer than a route's usual timeout, so in-flight requests finish, and
    /// short enough that an orchestrator's stop (often 30 s) is not cut off by a kill.
    @Option(
        name: .customLong("drain-timeout"),
        help: "Seconds a stopping process (or an initiator its route dropped) may take to finish the requests, files, rows and messages it holds; what is left is then cancelled and taken again at the next start (default: $SKYNET_DRAIN_TIMEOUT, else 20)."
    )
    var drainTimeout: Double = ProcessInfo.processInfo.environment["SKYNET_DRAIN_TIMEOUT"].flatMap(Double.init) ?? NodeContext.defaultDrainLimit.seconds

    /// The TLS files the flags and `SKYNET_TLS_*` name.
    var tlsFiles: TLSFiles {
        TLSFiles(
            certificate: self.tlsCertificate, key: self.tlsKey, authority: self.tlsClient.tlsAuthority, clientAuthority: self.tlsClientAuthority,
            clientCertificate: self.tlsClient.tlsClientCertificate, clientKey: self.tlsClient.tlsClientKey, allowedCallers: self.allowCallers.map { [$0] } ?? [],
            environment: ProcessInfo.processInfo.environment
        )
    }

    /// A log level swift-log knows, registry and OTLP addresses that parse, a drain limit of zero
    /// or more, an environment that is one DNS label: all refused before anything starts.
    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try RegistryAddress.resolve(flag: self.registry)
        do {
            _ = try OTLPEndpoint.resolve(flag: self.otlp)
            _ = try OTLPEndpoint.resolveMetrics(flag: self.otlp)
        } catch {
            throw ValidationError(error.message)
        }
        guard self.drainTimeout >= 0, self.drainTimeout.isFinite else {
            throw ValidationError("--drain-timeout must be a number of seconds, 0 or more (got \(self.drainTimeout))")
        }
        for (flag, value) in [("--environment", self.environment)] where !DNSLabel.isValid(value) {
            throw ValidationError("\(flag) '\(value)' must be one DNS label: letters, digits and '-', at most 63, not starting or ending with '-'")
        }
    }

    /// Checks a `--routes` value: a folder that exists, or `registry` where that is allowed.
    static func validateRoutes(_ routes: String, allowRegistry: Bool) throws {
        if allowRegistry && routes == "registry" { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: routes, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("routes folder '\(routes)' does not exist (give one with --routes DIR)")
        }
    }

    /// Sets up the process as the flags say (logging, metrics, the registry, the token) and
    /// answers what its parts share. `serviceName` names the process's spans in an
    /// OpenTelemetry backend (`OTEL_SERVICE_NAME` wins).
    func context(serviceName: String = "sky") async throws -> NodeContext {
        var context = try await NodeContext.bootstrap(
            logLevel: Logger.Level(rawValue: self.logLevel) ?? .info, registry: RegistryAddress.resolve(flag: self.registry),
            region: self.region, environment: self.environment, token: Self.token(), tls: self.tlsFiles,
            otlp: OTLPEndpoint.resolve(flag: self.otlp), otlpMetrics: OTLPEndpoint.resolveMetrics(flag: self.otlp), serviceName: serviceName, variables: ProcessInfo.processInfo.environment
        )
        context.drainLimit = .milliseconds(Int64(self.drainTimeout * 1000))
        return context
    }

    /// The shared token from `SKYNET_TOKEN` or the file named by `SKYNET_TOKEN_FILE`.
    static func token() throws -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let token = environment["SKYNET_TOKEN"], !token.isEmpty { return token }
        if let file = environment["SKYNET_TOKEN_FILE"], !file.isEmpty {
            let text = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw ValidationError("SKYNET_TOKEN_FILE \(file) is empty") }
            return text
        }
        return nil
    }
}

/// The flags of a process that calls nodes over TLS: the authority they must be signed by and
/// the certificate to present to those that ask for one.
struct TLSClientOptions: ParsableArguments {
    /// The system store unless given: a cluster behind a public authority needs no flag, one with
    /// `sky certs` gives its `ca.pem`.
    @Option(name: .customLong("tls-ca"), help: "PEM authority the nodes this process calls over https must be signed by (default: $SKYNET_TLS_CA, else the system store).")
    var tlsAuthority: String?

    /// Presented only to a node that asks (`--tls-client-ca` there); the same file as `--tls-cert`
    /// works, since `sky certs` issues for both uses.
    @Option(name: .customLong("tls-client-cert"), help: "PEM certificate this process presents to nodes that ask for one (default: $SKYNET_TLS_CLIENT_CERT).")
    var tlsClientCertificate: String?

    /// The key of `--tls-client-cert`, kept in its own file so it can have its own permissions.
    @Option(name: .customLong("tls-client-key"), help: "PEM key of --tls-client-cert (default: $SKYNET_TLS_CLIENT_KEY).")
    var tlsClientKey: String?

    /// The client TLS these flags (or their environment variables) name; `nil` when none do,
    /// for a cluster on plain HTTP.
    func nodeTLS() throws -> NodeTLS? {
        let files = TLSFiles(
            authority: self.tlsAuthority, clientCertificate: self.tlsClientCertificate, clientKey: self.tlsClientKey,
            environment: ProcessInfo.processInfo.environment
        )
        return try files.isEmpty ? nil : NodeTLS(files: files)
    }
}

/// `HOST:PORT` network flags.
struct HostPort: ExpressibleByArgument, CustomStringConvertible, Sendable {
    /// The host as written (a name or an address, brackets of an IPv6 address removed): resolved
    /// when listening or dialling, not when parsing.
    var host: String
    var port: Int

    /// A literal address, for flag defaults.
    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, `:PORT` (loopback) or `[IPv6]:PORT`; split at the last colon, so an IPv6
    /// address in brackets keeps its own colons.
    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    /// `HOST:PORT`, as the flag is written and as the registry stores addresses.
    var description: String { "\(self.host):\(self.port)" }

    /// Whether only this machine can connect.
    var isLoopback: Bool { ["127.0.0.1", "localhost", "::1"].contains(self.host) || self.host.hasPrefix("127.") }

    /// The address for the node runtime.
    var listenAddress: ListenAddress { ListenAddress(host: self.host, port: self.port) }

    /// A warning, not a refusal: a private network may be trusted, but listening beyond loopback
    /// with no token is something the operator must have meant.
    static func warnIfExposed(_ address: HostPort, token: String?, logger: Logger) {
        if !address.isLoopback && token == nil {
            logger.warning("listening on \(address) beyond this machine with no SKYNET_TOKEN set: anyone who can reach it can call it")
        }
    }
}
