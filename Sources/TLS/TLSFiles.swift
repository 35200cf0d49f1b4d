import Foundation

/// Where a process's TLS material is: paths given by flags, else by `SKYNET_TLS_*` variables.
///
/// One set per process: every listener it opens serves the same certificate, and every call it
/// makes to another node trusts the same authority (docs/SECURITY.md).
public struct TLSFiles: Sendable, Equatable {
    /// The listeners' certificate chain, PEM (`--tls-cert`, `SKYNET_TLS_CERT`).
    public var certificate: String?
    /// The listeners' private key, PEM (`--tls-key`, `SKYNET_TLS_KEY`).
    public var key: String?
    /// The authority that servers this process calls must be signed by (`--tls-ca`,
    /// `SKYNET_TLS_CA`); the system's trust store when not given.
    public var authority: String?
    /// When set, listeners require a client certificate signed by this authority
    /// (`--tls-client-ca`, `SKYNET_TLS_CLIENT_CA`): mutual TLS.
    public var clientAuthority: String?
    /// The certificate this process presents when it calls a node that asks for one
    /// (`--tls-client-cert`, `SKYNET_TLS_CLIENT_CERT`).
    public var clientCertificate: String?
    /// The key of ``clientCertificate`` (`--tls-client-key`, `SKYNET_TLS_CLIENT_KEY`).
    public var clientKey: String?
    /// Under mutual TLS, the certificate names (common name or DNS name) allowed to call this
    /// process's listeners (`--allow-callers a,b`, `SKYNET_ALLOW_CALLERS`); empty: any
    /// certificate the client authority signed.
    public var allowedCallers: [String]

    /// Creates a `TLSFiles` from its parts; `nil` parts are read from `environment`.
    public init(
        certificate: String? = nil, key: String? = nil, authority: String? = nil, clientAuthority: String? = nil,
        clientCertificate: String? = nil, clientKey: String? = nil, allowedCallers: [String] = [], environment: [String: String] = [:]
    ) {
        func pick(_ flag: String?, _ variable: String) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let value = environment[variable], !value.isEmpty { return value }
            return nil
        }
        self.certificate = pick(certificate, "SKYNET_TLS_CERT")
        self.key = pick(key, "SKYNET_TLS_KEY")
        self.authority = pick(authority, "SKYNET_TLS_CA")
        self.clientAuthority = pick(clientAuthority, "SKYNET_TLS_CLIENT_CA")
        self.clientCertificate = pick(clientCertificate, "SKYNET_TLS_CLIENT_CERT")
        self.clientKey = pick(clientKey, "SKYNET_TLS_CLIENT_KEY")
        let callers = allowedCallers.isEmpty ? (environment["SKYNET_ALLOW_CALLERS"].map { [$0] } ?? []) : allowedCallers
        self.allowedCallers = callers.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Whether the listeners serve TLS.
    public var serves: Bool { self.certificate != nil }

    /// Whether anything at all is configured (a process with none speaks plain HTTP).
    public var isEmpty: Bool {
        [self.certificate, self.key, self.authority, self.clientAuthority, self.clientCertificate, self.clientKey].allSatisfy { $0 == nil } && self.allowedCallers.isEmpty
    }
}
