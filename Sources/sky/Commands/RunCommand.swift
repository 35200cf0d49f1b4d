import ArgumentParser
import NodeRuntime
import Routing
import Services
import SkyLib
import RouteModel
import Foundation
import TLS

/// `sky run`: the whole engine in one process on the embedded registry.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run everything in one process: built-in services, a router with the routes folder, the HTTP initiator, the drop-folder initiators routes declare, a reaper."
    )

    @OptionGroup var common: CommonOptions

    /// `Routes/` by default: the example routes beside the checkout, what `make run` serves.
    @Option(help: "Folder of route files (*.yaml), reloaded live; or 'registry' for the routes pushed with `sky routes push`.")
    var routes: String = "Routes"

    @OptionGroup var http: HTTPInitiatorOptions

    /// Every built-in service by default, so the example routes work out of the box.
    @Option(help: "Built-in services to host, comma-separated (default: all).")
    var services: String = BuiltinServices.names.joined(separator: ",")

    @Flag(name: .customLong("tls-dev"), help: "Serve TLS with a development authority in .skynet/tls/ (made on first use; its node certificate is for localhost and 127.0.0.1). Trust .skynet/tls/ca.pem in clients.")
    var tlsDevelopment = false

    /// A routes folder that exists and services that are built in.
    func validate() throws {
        try CommonOptions.validateRoutes(self.routes, allowRegistry: true)
        for name in self.serviceNames where !BuiltinServices.names.contains(name) {
            throw ValidationError("unknown built-in service '\(name)' (built-in: \(BuiltinServices.names.joined(separator: ", ")))")
        }
    }

    /// `--services` split on commas, blanks dropped.
    var serviceNames: [String] {
        self.services.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Everything in one process on the embedded registry: the built-in services (called
    /// in-process, without a socket), the router with the routes folder, the HTTP initiator, the
    /// initiators the routes declare, and a reaper; prints a one-screen summary once it serves.
    /// With `--tls-dev`, a development authority and a certificate for this machine first.
    func run() async throws {
        var common = self.common
        if self.tlsDevelopment {
            guard common.tlsCertificate == nil, common.tlsKey == nil else { throw ValidationError("--tls-dev makes its own certificate: give it or --tls-cert/--tls-key, not both") }
            let issued = try Self.developmentCertificate(in: ".skynet/tls")
            common.tlsCertificate = issued.certificate
            common.tlsKey = issued.key
            common.tlsClient.tlsAuthority = common.tlsClient.tlsAuthority ?? ".skynet/tls/ca.pem"
        }
        let context = try await common.context()
        var configuration = RouterNode.Configuration()
        configuration.routes = self.routes
        configuration.http = self.http.address(in: context)
        configuration.builtinServices = self.serviceNames
        configuration.runsSourceInitiators = true
        configuration.runsReaper = true
        let routes = self.routes
        try await RouterNode(configuration: configuration, context: context) { ready in
            Output.line(StartupSummary.text(
                address: ready.address, routes: ready.routes, routesDirectory: routes, services: ready.services.map { ($0.name, $0.address) },
                registry: ready.registry
            ))
        }.run()
    }
}

/// The development certificate `--tls-dev` serves.
extension RunCommand {
    /// The development authority in `folder` (made on first use) and a certificate for this
    /// machine from it, issued again when missing or within a week of expiring.
    static func developmentCertificate(in folder: String) throws -> CertificateAuthority.Issued {
        let authority = FileManager.default.fileExists(atPath: folder + "/ca-key.pem")
            ? CertificateAuthority(directory: folder) : try CertificateAuthority.create(in: folder)
        let existing = CertificateAuthority.Issued(certificate: folder + "/localhost.pem", key: folder + "/localhost-key.pem")
        if let files = try? NodeTLS(files: TLSFiles(certificate: existing.certificate, key: existing.key)), files.expiryWarning() == nil {
            return existing
        }
        return try authority.issue("localhost", dnsNames: ["localhost", ProcessInfo.processInfo.hostName], ipAddresses: ["127.0.0.1", "::1"])
    }
}

/// The one screen `sky run` prints when it is ready.
enum StartupSummary {
    /// The summary `sky run` prints: where it listens, the registry, the services, each route with
    /// its steps and initiators, and curl lines to try.
    static func text(address: String, routes: [RouteSummary], routesDirectory: String, services: [(String, String)], registry: String) -> String {
        var lines = ["", "Skynet is running.", ""]
        let base = AdvertisedAddress.url(address, path: "")
        lines.append("  HTTP       \(base)   (GET /routes, /health, /debug/vars)")
        lines.append("  registry   \(registry)")
        lines.append("  services   \(services.map { "\($0.0)@\($0.1)" }.joined(separator: " "))")
        lines.append(
            routesDirectory == "registry"
                ? "  routes     \(routes.count) from the registry (sky routes push --wait DIR changes them)"
                : "  routes     \(routes.count) from \(routesDirectory)/ (edit a file: it reloads within a second)"
        )
        for summary in routes {
            lines.append("             POST /routes/\(summary.route.name): \(RouteFiles.describe(summary.route))")
        }
        let initiators = routes.flatMap { summary in summary.route.sources.map { "\($0) → \(summary.route.name)" } }
        if !initiators.isEmpty {
            lines.append("  initiators \(initiators.joined(separator: "; "))")
        }

        lines.append("")
        if routes.contains(where: { $0.route.name == "text" }) {
            lines.append("  Try:  curl -s -X POST \(base)/routes/text -H 'Content-Type: application/json' -d '{\"text\":\"hello big world\"}'")
        } else if let first = routes.first {
            lines.append("  Try:  curl -s -X POST \(base)/routes/\(first.route.name) -H 'Content-Type: application/json' -d '{}'")
        }
        if let files = routes.lazy.flatMap({ summary in summary.route.sources.compactMap { source -> String? in
            if case .files(let files) = source { return files.dir }
            return nil
        } }).first {
            lines.append("        echo '{\"text\":\"from a file\"}' > \(files)/hello.json   (answer in \(files)/.out/)")
        }
        lines.append("  Stop: Ctrl-C (drains in-flight requests first)")
        lines.append("")
        return lines.joined(separator: "\n")
    }
}
