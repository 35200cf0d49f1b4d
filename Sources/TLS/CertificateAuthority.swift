import Crypto
public import Foundation
#if canImport(Glibc)
import Glibc
#endif
public import SkyLib
import SwiftASN1
import X509

/// A small certificate authority for development and tests (`sky certs init`, `sky certs
/// issue`, `sky run --tls-dev`): a P-256 CA and node certificates it signs, PEM files, keys
/// readable by their owner only (0600).
///
/// Production clusters bring their own authority; these files are what the flags take either way.
public struct CertificateAuthority: Sendable {
    /// The folder holding `ca.pem` and `ca-key.pem`, and the certificates issued.
    public let directory: String

    /// The CA certificate's path.
    public var certificatePath: String { self.directory + "/ca.pem" }
    /// The CA key's path.
    public var keyPath: String { self.directory + "/ca-key.pem" }

    /// Opens the authority in `directory` (made by ``create(in:name:validity:)``).
    public init(directory: String) {
        self.directory = directory
    }

    /// Makes a new authority in `directory`; refuses to overwrite one that is there.
    @discardableResult
    public static func create(in directory: String, name: String = "Skynet development CA", validity: TimeInterval = 365 * 86_400) throws(SkyError) -> CertificateAuthority {
        let authority = CertificateAuthority(directory: directory)
        guard !FileManager.default.fileExists(atPath: authority.keyPath) else {
            throw SkyError(.configuration, "\(authority.keyPath) exists already: an authority is there (remove it to make a new one)")
        }
        let key = P256.Signing.PrivateKey()
        let subject: DistinguishedName
        do {
            subject = try DistinguishedName { CommonName(name) }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                },
                issuerPrivateKey: .init(key)
            )
            try Self.write(certificate, key: key, to: Issued(certificate: authority.certificatePath, key: authority.keyPath))
        } catch {
            throw SkyError(.configuration, "cannot make a certificate authority in \(directory): \(error)")
        }
        return authority
    }

    /// The paths of one issued certificate.
    public struct Issued: Sendable, Equatable {
        /// The certificate, PEM.
        public var certificate: String
        /// Its private key, PEM, mode 0600.
        public var key: String

        /// Names the two files.
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// Issues a certificate for `name` (its common name, and a DNS name unless `dnsNames` says
    /// otherwise) valid for servers and clients, with `ipAddresses` as IP names; writes
    /// `NAME.pem` and `NAME-key.pem` into the authority's folder (or `output`).
    public func issue(
        _ name: String, dnsNames: [String] = [], ipAddresses: [String] = [], validity: TimeInterval = 90 * 86_400, output: String? = nil
    ) throws(SkyError) -> Issued {
        let folder = output ?? self.directory
        let issued = Issued(certificate: folder + "/\(name).pem", key: folder + "/\(name)-key.pem")
        var names: [GeneralName] = (dnsNames.isEmpty ? [name] : dnsNames).map { .dnsName($0) }
        for address in ipAddresses {
            guard let bytes = Self.addressBytes(address) else { throw SkyError(.configuration, "--ip '\(address)' is not an IPv4 or IPv6 address") }
            names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        do {
            let caCertificate = try Certificate(pemEncoded: String(contentsOfFile: self.certificatePath, encoding: .utf8))
            let caKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: self.keyPath, encoding: .utf8))
            let key = P256.Signing.PrivateKey()
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
                issuer: caCertificate.subject, subject: try DistinguishedName { CommonName(name) }, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(names)
                },
                issuerPrivateKey: .init(caKey)
            )
            try Self.write(certificate, key: key, to: issued)
        } catch {
            throw SkyError(.configuration, "cannot issue a certificate for '\(name)' from the authority in \(self.directory): \(error)")
        }
        return issued
    }

    /// Writes a certificate (0644) and its key (0600) as PEM.
    static func write(_ certificate: Certificate, key: P256.Signing.PrivateKey, to files: Issued) throws {
        try Self.write(try certificate.serializeAsPEM().pemString, to: files.certificate, mode: 0o644)
        try Self.write(key.pemRepresentation, to: files.key, mode: 0o600)
    }

    /// Writes `text` to `path` created with `mode` (the key never exists with wider rights).
    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard descriptor >= 0 else { throw SkyError(.configuration, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        _ = fchmod(descriptor, mode)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw SkyError(.configuration, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// The network-order bytes of an IPv4 or IPv6 address.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
