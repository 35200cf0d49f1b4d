import Foundation

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
        return Self.interfaceAddresses().contains(name)
    }

    /// The addresses of this namespace's interfaces, as text.
    static func interfaceAddresses() -> Set<String> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: Set<String> = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let socketAddress = entry.pointee.ifa_addr else { continue }
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socketAddress.pointee.sa_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
            guard [sa_family_t(AF_INET), sa_family_t(AF_INET6)].contains(socketAddress.pointee.sa_family),
                getnameinfo(socketAddress, socklen_t(length), &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            else { continue }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            addresses.insert(text.split(separator: "%").first.map(String.init) ?? "")
        }
        return addresses
    }
}
