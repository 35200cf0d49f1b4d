import Foundation
import SkyLib

/// Whether an address is this machine's (in this network namespace): loopback, `localhost`, or
/// an address of one of its interfaces. The drill faults nothing that is not.
enum LocalAddresses {
    /// Whether `address` (`HOST:PORT`, `[V6]:PORT`, a URL) names this machine.
    static func isLocal(_ address: String) -> Bool {
        var host = Substring(address)
        if let scheme = host.range(of: "://") { host = host[scheme.upperBound...] }
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
        if let slash = host.firstIndex(of: "/") { host = host[..<slash] }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        let name = String(host)
        if name == "localhost" || name.hasPrefix("127.") || name == "::1" || name == "0.0.0.0" || name == "::" { return true }
        return AdvertisedAddress.interfaceAddresses().contains { $0.text == name }
    }
}
