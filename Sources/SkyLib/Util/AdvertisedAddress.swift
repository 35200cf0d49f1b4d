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
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(entry.pointee.ifa_flags)
            guard flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0,
                  let socketAddress = entry.pointee.ifa_addr, socketAddress.pointee.sa_family == sa_family_t(AF_INET)
            else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let found = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet -> Bool in
                var address = inet.pointee.sin_addr
                return inet_ntop(AF_INET, &address, &text, socklen_t(INET_ADDRSTRLEN)) != nil
            }
            if found { return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        return nil
    }
}
