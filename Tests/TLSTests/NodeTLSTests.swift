import Foundation
import SkyLib
import Testing
@testable import TLS

/// The development authority and a process's TLS, on real files in a temporary folder
/// (the end-to-end suite checks the same files with curl and openssl).
@Suite struct NodeTLSTests {
    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "sky-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
    }

    @Test func anAuthorityIssuesCertificatesAProcessServesAndTrusts() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let authority = try CertificateAuthority.create(in: folder)
        let issued = try authority.issue("node", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], validity: 10 * 86_400)
        #expect(Self.mode(authority.keyPath) == 0o600 && Self.mode(issued.key) == 0o600)
        #expect(Self.mode(issued.certificate) == 0o644)
        #expect(throws: SkyError.self) { try CertificateAuthority.create(in: folder) }

        let tls = try NodeTLS(files: TLSFiles(certificate: issued.certificate, key: issued.key, authority: authority.certificatePath))
        #expect(tls.serves && !tls.requiresClientCertificates && tls.serverContext != nil)
        let left = try #require(tls.notValidAfter).timeIntervalSinceNow
        #expect(left > 9.9 * 86_400 && left < 10.1 * 86_400)
        #expect(tls.expiryWarning() == nil)
        #expect(tls.expiryWarning(now: Date().addingTimeInterval(5 * 86_400))?.contains("expires in") == true)
        #expect(tls.expiryWarning(now: Date().addingTimeInterval(11 * 86_400))?.contains("expired at") == true)
    }

    @Test func anAddressThatIsNotOneIsRefused() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let authority = try CertificateAuthority.create(in: folder)
        #expect(throws: SkyError.self) { _ = try authority.issue("node", ipAddresses: ["10.0.0.999"]) }
    }

    @Test func missingUnreadableAndHalfGivenFilesAreNamed() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let authority = try CertificateAuthority.create(in: folder)
        let issued = try authority.issue("node")
        try "not a certificate".write(toFile: folder + "/junk.pem", atomically: true, encoding: .utf8)
        let cases: [(TLSFiles, String)] = [
            (TLSFiles(certificate: folder + "/none.pem", key: issued.key), "--tls-cert \(folder)/none.pem: no such readable file"),
            (TLSFiles(certificate: folder + "/junk.pem", key: issued.key), "--tls-cert \(folder)/junk.pem is not a PEM certificate"),
            (TLSFiles(certificate: issued.certificate, key: issued.certificate), "--tls-key \(issued.certificate) is not a PEM private key"),
            (TLSFiles(certificate: issued.certificate), "--tls-cert (SKYNET_TLS_CERT) is set without --tls-key"),
            (TLSFiles(key: issued.key), "--tls-key (SKYNET_TLS_KEY) is set without --tls-cert"),
            (TLSFiles(clientAuthority: authority.certificatePath), "--tls-client-ca (SKYNET_TLS_CLIENT_CA) needs --tls-cert and --tls-key"),
            (TLSFiles(clientCertificate: issued.certificate), "--tls-client-cert (SKYNET_TLS_CLIENT_CERT) is set without --tls-client-key"),
            (TLSFiles(authority: folder + "/junk.pem"), "--tls-ca \(folder)/junk.pem is not a PEM certificate"),
        ]
        for (files, message) in cases {
            do {
                _ = try NodeTLS(files: files)
                Issue.record("accepted \(files)")
            } catch {
                #expect(error.code == .configuration && error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test func aFailedReloadKeepsTheCertificateInUse() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let authority = try CertificateAuthority.create(in: folder)
        let issued = try authority.issue("node", validity: 30 * 86_400)
        let tls = try NodeTLS(files: TLSFiles(certificate: issued.certificate, key: issued.key))
        let first = try #require(tls.notValidAfter)
        try "broken".write(toFile: issued.certificate, atomically: true, encoding: .utf8)
        #expect(throws: SkyError.self) { try tls.reload() }
        #expect(tls.notValidAfter == first && tls.serverContext != nil)
        _ = try authority.issue("node", validity: 60 * 86_400)
        try tls.reload()
        #expect(try #require(tls.notValidAfter) > first.addingTimeInterval(29 * 86_400))
    }

    @Test func flagsWinOverTheEnvironment() {
        let files = TLSFiles(certificate: "flag.pem", environment: ["SKYNET_TLS_CERT": "env.pem", "SKYNET_TLS_KEY": "env-key.pem", "SKYNET_TLS_CA": ""])
        #expect(files.certificate == "flag.pem" && files.key == "env-key.pem" && files.authority == nil)
        #expect(TLSFiles().isEmpty && !TLSFiles(authority: "ca.pem").isEmpty)
    }
}
