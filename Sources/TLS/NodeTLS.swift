public import Foundation
public import NIOSSL
public import SkyLib
import Synchronization
import SwiftASN1
import X509

/// A process's TLS: the context its listeners serve (reloadable, so renewed certificates take
/// effect without a restart) and the configuration its calls to other nodes use.
///
/// Listeners ask ``serverContext`` for each new connection, so a ``reload()`` (on SIGHUP, or
/// when the files change) applies to the next connection while open ones keep theirs.
public final class NodeTLS: Sendable {
    /// Where the material came from.
    public let files: TLSFiles
    /// For calls to other nodes (services, `/health`, `/debug/stats`): TLS 1.2 or later,
    /// servers verified against ``TLSFiles/authority`` (or the system store) including their
    /// name or address, and this process's client certificate when it has one.
    public let client: TLSConfiguration
    private let server: Mutex<Loaded?>

    /// A loaded server context and when its certificate stops being valid.
    struct Loaded: Sendable {
        var context: NIOSSLContext
        var notValidAfter: Date
        var subject: String
    }

    /// Loads the files; every problem is a `configuration_error` naming the file and the flag.
    public init(files: TLSFiles) throws(SkyError) {
        self.files = files
        self.server = Mutex(try Self.loadServer(files))
        self.client = try Self.makeClient(files)
    }

    /// Whether the listeners serve TLS.
    public var serves: Bool { self.files.serves }

    /// Whether listeners ask callers for a certificate (mutual TLS).
    public var requiresClientCertificates: Bool { self.files.clientAuthority != nil }

    /// The context for a new connection on a listener; `nil` when the process serves plain HTTP.
    public var serverContext: NIOSSLContext? { self.server.withLock { $0?.context } }

    /// When the served certificate expires; `nil` without one.
    public var notValidAfter: Date? { self.server.withLock { $0?.notValidAfter } }

    /// Reads the listener's certificate and key again. On failure the old ones stay in use
    /// and the error says why.
    public func reload() throws(SkyError) {
        let loaded = try Self.loadServer(self.files)
        self.server.withLock { $0 = loaded }
    }

    /// A warning to log when the served certificate expires within `window` (or has), else `nil`.
    public func expiryWarning(now: Date = Date(), window: TimeInterval = 7 * 86_400) -> String? {
        guard let loaded = self.server.withLock({ $0 }), let path = self.files.certificate else { return nil }
        let left = loaded.notValidAfter.timeIntervalSince(now)
        guard left < window else { return nil }
        if left <= 0 { return "TLS certificate \(path) (\(loaded.subject)) expired at \(loaded.notValidAfter); callers will refuse it" }
        return "TLS certificate \(path) (\(loaded.subject)) expires in \(Int(left / 3600)) h, at \(loaded.notValidAfter); renew it and send SIGHUP"
    }

    /// The names a caller's certificate goes by: its common name and its DNS names.
    public static func names(of certificate: NIOSSLCertificate) -> [String] {
        guard let parsed = try? Certificate(derEncoded: certificate.toDERBytes()) else { return [] }
        var names = parsed.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }.map { "\($0.value)" }
        if let alternatives = try? parsed.extensions.subjectAlternativeNames {
            for name in alternatives { if case .dnsName(let dns) = name { names.append(dns) } }
        }
        return names
    }

    /// Whether a caller with `names` may call this process's listeners (``TLSFiles/allowedCallers``).
    public func allows(_ names: [String]) -> Bool {
        self.files.allowedCallers.isEmpty || names.contains { self.files.allowedCallers.contains($0) }
    }

    private static func loadServer(_ files: TLSFiles) throws(SkyError) -> Loaded? {
        if !files.allowedCallers.isEmpty && files.clientAuthority == nil {
            throw SkyError(.configuration, "--allow-callers (SKYNET_ALLOW_CALLERS) needs --tls-client-ca: callers are known by the certificates it signed")
        }
        guard let certificatePath = files.certificate else {
            if files.key != nil { throw SkyError(.configuration, "--tls-key (SKYNET_TLS_KEY) is set without --tls-cert (SKYNET_TLS_CERT)") }
            if files.clientAuthority != nil {
                throw SkyError(.configuration, "--tls-client-ca (SKYNET_TLS_CLIENT_CA) needs --tls-cert and --tls-key: client certificates are asked for over TLS")
            }
            return nil
        }
        guard let keyPath = files.key else { throw SkyError(.configuration, "--tls-cert (SKYNET_TLS_CERT) is set without --tls-key (SKYNET_TLS_KEY)") }
        let chain = try Self.certificates(certificatePath, flag: "--tls-cert")
        let key = try Self.privateKey(keyPath, flag: "--tls-key")
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let authority = files.clientAuthority {
            _ = try Self.certificates(authority, flag: "--tls-client-ca")
            // Callers are verified against the authority; their names are checked by the
            // listener's caller list, not against a host name (a caller has none to match).
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(authority)
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            let leaf = chain[0]
            return Loaded(
                context: context, notValidAfter: Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter)),
                subject: Self.describe(leaf)
            )
        } catch {
            throw SkyError(.configuration, "TLS certificate \(certificatePath) and key \(keyPath) do not make a server context: \(error)")
        }
    }

    private static func makeClient(_ files: TLSFiles) throws(SkyError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let authority = files.authority {
            _ = try Self.certificates(authority, flag: "--tls-ca")
            configuration.trustRoots = .file(authority)
        }
        switch (files.clientCertificate, files.clientKey) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            configuration.certificateChain = try Self.certificates(certificate, flag: "--tls-client-cert").map { .certificate($0) }
            configuration.privateKey = .privateKey(try Self.privateKey(key, flag: "--tls-client-key"))
        case (nil, _):
            throw SkyError(.configuration, "--tls-client-key (SKYNET_TLS_CLIENT_KEY) is set without --tls-client-cert (SKYNET_TLS_CLIENT_CERT)")
        case (_, nil):
            throw SkyError(.configuration, "--tls-client-cert (SKYNET_TLS_CLIENT_CERT) is set without --tls-client-key (SKYNET_TLS_CLIENT_KEY)")
        }
        return configuration
    }

    private static func certificates(_ path: String, flag: String) throws(SkyError) -> [NIOSSLCertificate] {
        guard FileManager.default.isReadableFile(atPath: path) else { throw SkyError(.configuration, "\(flag) \(path): no such readable file") }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw SkyError(.configuration, "\(flag) \(path) is not a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw SkyError(.configuration, "\(flag) \(path) holds no certificate") }
        return chain
    }

    private static func privateKey(_ path: String, flag: String) throws(SkyError) -> NIOSSLPrivateKey {
        guard FileManager.default.isReadableFile(atPath: path) else { throw SkyError(.configuration, "\(flag) \(path): no such readable file") }
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw SkyError(.configuration, "\(flag) \(path) is not a PEM private key: \(error)")
        }
    }

    /// The certificate as NIOSSL names it (serial number and common name), for logs.
    static func describe(_ certificate: NIOSSLCertificate) -> String {
        "\(certificate)"
    }
}
