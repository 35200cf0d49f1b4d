import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The address a node writes into the registry for a listener: what other hosts dial.
///
/// A listener bound to a wildcard (`0.0.0.0`, `::`) accepts on every interface, but
/// "0.0.0.0" in the registry would send a router on another host to itself. Such a node
/// advertises the first non-loopback IPv4 address of an interface that is up (the host's own
/// address in a network namespace with one link), and its host name when there is none.
public enum AdvertisedAddress {
    /// `host:port` to register for a listener bound to `host` and `port`; `https://host:port`
    /// when it serves TLS, so callers know to speak it.
    public static func forListener(host: String, port: Int, tls: Bool = false) -> String {
        (tls ? "https://" : "") + "\(Self.isWildcard(host) ? (Self.firstInterfaceAddress() ?? ProcessInfo.processInfo.hostName) : host):\(port)"
    }

    /// The URL of `path` on the node at `address`: `https://` for an address that says so,
    /// else `http://`.
    public static func url(_ address: String, path: String) -> String {
        address.hasPrefix("https://") || address.hasPrefix("http://") ? address + path : "http://" + address + path
    }

    /// `host:port` of an address, without its scheme.
    public static func hostPort(_ address: String) -> Substring {
        if address.hasPrefix("https://") { return address.dropFirst("https://".count) }
        if address.hasPrefix("http://") { return address.dropFirst("http://".count) }
        return address[...]
    }

    /// Whether the node at `address` serves TLS.
    public static func isTLS(_ address: String) -> Bool { address.hasPrefix("https://") }

    /// Whether `host` binds every interface.
    public static func isWildcard(_ host: String) -> Bool {
        ["0.0.0.0", "::", "[::]", "", "*"].contains(host)
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    public static func firstInterfaceAddress() -> String? {
        Self.interfaceAddresses().first { $0.isUp && !$0.isLoopback && $0.isIPv4 }?.text
    }

    /// One address of one of this network namespace's interfaces.
    public struct InterfaceAddress: Sendable, Hashable {
        /// The address as text (`10.0.0.2`, `fe80::1`, without a `%scope`).
        public var text: String
        /// IPv4 (else IPv6).
        public var isIPv4: Bool
        /// Whether its interface is up.
        public var isUp: Bool
        /// Whether its interface is a loopback.
        public var isLoopback: Bool
    }

    /// The IPv4 and IPv6 addresses of this namespace's interfaces, in the kernel's order.
    public static func interfaceAddresses() -> [InterfaceAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [InterfaceAddress] = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let socketAddress = entry.pointee.ifa_addr else { continue }
            let family = socketAddress.pointee.sa_family
            guard family == sa_family_t(AF_INET) || family == sa_family_t(AF_INET6) else { continue }
            let length = family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard getnameinfo(socketAddress, socklen_t(length), &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let flags = Int32(entry.pointee.ifa_flags)
            addresses.append(InterfaceAddress(
                text: text.split(separator: "%").first.map(String.init) ?? text, isIPv4: family == sa_family_t(AF_INET),
                isUp: flags & Int32(IFF_UP) != 0, isLoopback: flags & Int32(IFF_LOOPBACK) != 0
            ))
        }
        return addresses
    }
}
