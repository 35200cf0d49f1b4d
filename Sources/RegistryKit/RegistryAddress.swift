import Foundation
public import SkyLib

/// Where the registry is: `sqlite:PATH` (the default, `sqlite:.skynet/registry.sqlite`) or
/// `mongodb://host:port/db`, from `--registry` or `SKYNET_REGISTRY`.
public enum RegistryAddress: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case mongodb(uri: String)

    /// The default when neither the flag nor the environment says otherwise.
    public static let defaultAddress = RegistryAddress.sqlite(path: ".skynet/registry.sqlite")

    /// Parses an address.
    /// - Throws: `SkyError` with code `.configuration` naming what is wrong.
    public init(_ text: String) throws(SkyError) {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw SkyError(.configuration, "registry address 'sqlite:' needs a file path, e.g. sqlite:.skynet/registry.sqlite") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("mongodb://") || text.hasPrefix("mongodb+srv://") {
            self = .mongodb(uri: text)
        } else {
            throw SkyError(.configuration, "registry address '\(text)' is neither sqlite:PATH nor mongodb://HOST:PORT/DB")
        }
    }

    /// The address from an explicit flag, else `SKYNET_REGISTRY`, else the default.
    ///
    /// Credentials never need to be on a command line (where `ps` shows them): put the URI in
    /// `SKYNET_REGISTRY`, or in a file named by `SKYNET_REGISTRY_FILE`; a `--registry` flag
    /// with credentials in it is refused.
    public static func resolve(flag: String?, environment: [String: String]) throws(SkyError) -> RegistryAddress {
        if let flag {
            let address = try RegistryAddress(flag)
            if case .mongodb(let uri) = address, Self.hasCredentials(uri) {
                throw SkyError(
                    .configuration,
                    "--registry carries credentials, which any user can read in the process list: put the URI in SKYNET_REGISTRY or in a file named by SKYNET_REGISTRY_FILE"
                )
            }
            return address
        }
        if let env = environment["SKYNET_REGISTRY"], !env.isEmpty { return try RegistryAddress(env) }
        if let file = environment["SKYNET_REGISTRY_FILE"], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw SkyError(.configuration, "SKYNET_REGISTRY_FILE \(file) cannot be read")
            }
            return try RegistryAddress(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return .defaultAddress
    }

    /// Whether a MongoDB URI has `user[:password]@` before its hosts.
    static func hasCredentials(_ uri: String) -> Bool {
        guard let scheme = uri.range(of: "://") else { return false }
        let rest = uri[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        return authority.contains("@")
    }

    /// The address as given, credentials included: for handing to a child process's
    /// environment (`SKYNET_REGISTRY`), never for logs.
    public var uri: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .mongodb(let uri): uri
        }
    }

    /// The address without credentials, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .mongodb(let uri):
            guard let at = uri.firstIndex(of: "@"), let scheme = uri.range(of: "://") else { return uri }
            return String(uri[..<scheme.upperBound]) + "***@" + String(uri[uri.index(after: at)...])
        }
    }
}
