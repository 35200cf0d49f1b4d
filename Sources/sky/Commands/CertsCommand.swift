import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import TLS

/// `sky certs`: a certificate authority for development and tests, and node certificates.
struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Make a development certificate authority and node certificates for --tls-cert and friends.",
        discussion: """
            sky certs init .skynet/tls makes ca.pem and ca-key.pem (P-256, a year); \
            sky certs issue router --ip 127.0.0.1 makes router.pem and router-key.pem (keys mode 0600), \
            valid for servers and clients: one certificate serves a node's listeners and its mutual-TLS calls.
            """,
        subcommands: [Init.self, Issue.self]
    )

    /// `sky certs init [DIR]`.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a certificate authority (ca.pem, ca-key.pem) in DIR.")

        /// `.skynet/tls`, beside the embedded registry: where `sky run --tls-dev` looks, so the two
        /// agree without flags.
        @Argument(help: "Folder for the authority.")
        var directory: String = ".skynet/tls"

        @Option(help: "The authority's name (its certificate's common name).")
        var name: String = "Skynet development CA"

        /// A year: a development authority outlives the node certificates it issues, which are
        /// renewed more often.
        @Option(help: "Days the authority is valid.")
        var days: Int = 365

        /// Refuses to overwrite an authority already in the folder: every certificate it issued
        /// would stop verifying.
        func run() async throws {
            let authority = try CertificateAuthority.create(in: self.directory, name: self.name, validity: TimeInterval(self.days) * 86_400)
            Output.line("certificate authority \(authority.certificatePath) (key \(authority.keyPath), mode 0600), valid \(self.days) days")
        }
    }

    /// `sky certs issue NAME`.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue NAME.pem and NAME-key.pem signed by the authority in --dir.")

        @Argument(help: "The certificate's name: its common name, and its DNS name unless --dns is given (what --allow-callers matches).")
        var name: String

        @Option(help: "The authority's folder (from sky certs init); the certificate is written there too.")
        var dir: String = ".skynet/tls"

        /// Repeatable: one certificate serves every name a node is reached by (its host name, a
        /// load balancer's).
        @Option(help: "A DNS name the certificate is valid for (repeatable).")
        var dns: [String] = []

        /// Nodes register addresses, often IPs, and clients check the certificate against the
        /// address they dial: without the IP here, a call to `127.0.0.1:PORT` fails verification.
        @Option(help: "An IP address the certificate is valid for (repeatable), e.g. 127.0.0.1.")
        var ip: [String] = []

        /// 90 days, as public authorities issue: renewal is meant to be routine (files are reloaded
        /// when they change, no restart).
        @Option(help: "Days the certificate is valid.")
        var days: Int = 90

        /// Writes the certificate and its key (mode 0600) beside the authority, which is where
        /// `--tls-cert` examples point.
        func run() async throws {
            let issued = try CertificateAuthority(directory: self.dir).issue(
                self.name, dnsNames: self.dns, ipAddresses: self.ip, validity: TimeInterval(self.days) * 86_400
            )
            Output.line("issued \(issued.certificate) (key \(issued.key), mode 0600), valid \(self.days) days")
        }
    }
}
