import Foundation
import SkyLib

/// Several hosts on one machine, made of Linux network namespaces, for tests of partitions.
///
/// Each host is a namespace with its own address (`10.213.N.2`, a private range that exists
/// only inside these namespaces) and a veth link to one more namespace that plays the network:
/// it forwards between the hosts, and a cut is a pair of `blackhole` policy rules there. A
/// forwarded packet that hits a blackhole is dropped without a word, as on a real partition:
/// connections hang and time out, they are not refused. Only `ip` (iproute2) is needed.
///
/// Processes run inside a host with ``command(_:_:)`` (`ip netns exec`); ``close()`` kills
/// them and deletes every namespace. Namespaces are named after the creating process, so a
/// later run removes what a crashed one left behind.
public final class Hosts: Sendable {

    /// Why hosts cannot be made here, or `nil` when they can (root and iproute2).
    public static var unavailable: String? {
        guard getuid() == 0 else { return "network namespaces need root" }
        guard FileManager.default.isExecutableFile(atPath: Self.ip) else { return "iproute2's ip is not installed" }
        return nil
    }

    private static let made = Locked(0)

    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    /// Host names, in the order given.
    public let names: [String]
    private let prefix: String
    private let cuts = Locked<Set<String>>([])

    /// Makes one namespace per name, each with an address and a link to the network.
    public init(_ names: [String]) throws {
        self.names = names
        self.prefix = "skyt\(getpid())x\(Self.made.withLock { $0 += 1; return $0 })"
        Self.removeLeftovers()
        do {
            try Self.run(["netns", "add", self.network])
            try Self.run(["-n", self.network, "link", "set", "lo", "up"])
            try Self.sysctl(self.network, "net/ipv4/ip_forward", "1")
            for (index, name) in names.enumerated() {
                let namespace = self.namespace(name), link = "h\(index + 1)", subnet = "10.213.\(index + 1)"
                try Self.run(["netns", "add", namespace])
                try Self.run(["-n", self.network, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace])
                try Self.run(["-n", self.network, "addr", "add", "\(subnet).1/24", "dev", link])
                try Self.run(["-n", self.network, "link", "set", link, "up"])
                try Self.run(["-n", namespace, "addr", "add", "\(subnet).2/24", "dev", "eth0"])
                try Self.run(["-n", namespace, "link", "set", "eth0", "up"])
                try Self.run(["-n", namespace, "link", "set", "lo", "up"])
                try Self.run(["-n", namespace, "route", "add", "default", "via", "\(subnet).1"])
            }
        } catch {
            self.close()
            throw error
        }
    }

    deinit { self.close() }

    /// The namespace that plays the network between the hosts.
    var network: String { "\(self.prefix)-net" }

    /// The namespace of host `name`.
    public func namespace(_ name: String) -> String { "\(self.prefix)-\(name)" }

    /// The address of host `name`.
    public func address(_ name: String) -> String {
        guard let index = self.names.firstIndex(of: name) else { preconditionFailure("no host \(name)") }
        return "10.213.\(index + 1).2"
    }

    /// The command line that runs `executable ARGUMENTS` inside host `name`.
    public func command(_ name: String, _ arguments: [String]) -> [String] {
        [Self.ip, "netns", "exec", self.namespace(name)] + arguments
    }

    /// Cuts every packet between hosts `a` and `b`, both ways.
    public func cut(_ a: String, _ b: String) throws {
        try self.rules(add: true, [("from", a, "to", b), ("from", b, "to", a)])
    }

    /// Heals a cut between `a` and `b`.
    public func heal(_ a: String, _ b: String) throws {
        try self.rules(add: false, [("from", a, "to", b), ("from", b, "to", a)])
    }

    /// Cuts host `name` from every other host.
    public func isolate(_ name: String) throws {
        for other in self.names where other != name { try self.cut(name, other) }
    }

    /// Heals every cut of host `name`.
    public func rejoin(_ name: String) throws {
        for other in self.names where other != name { try self.heal(name, other) }
    }

    private func rules(add: Bool, _ pairs: [(String, String, String, String)]) throws {
        for (from, a, to, b) in pairs {
            let key = "\(a)>\(b)"
            let changes = self.cuts.withLock { cuts in add ? cuts.insert(key).inserted : cuts.remove(key) != nil }
            guard changes else { continue }
            try Self.run(["-n", self.network, "rule", add ? "add" : "del", from, self.address(a), to, self.address(b), "blackhole", "priority", "100"])
        }
    }

    /// Kills every process in the hosts and deletes the namespaces (and so their links).
    public func close() {
        for name in self.names { Self.killAll(in: self.namespace(name)) }
        Self.killAll(in: self.network)
        for name in self.names { _ = try? Self.run(["netns", "delete", self.namespace(name)]) }
        _ = try? Self.run(["netns", "delete", self.network])
    }

    /// Deletes the namespaces of runs whose process is gone.
    static func removeLeftovers() {
        guard let list = try? Self.output(["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("skyt"), let pid = Int32(name.dropFirst(4).prefix { $0.isNumber }) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                Self.killAll(in: name)
                _ = try? Self.run(["netns", "delete", name])
            }
        }
    }

    static func killAll(in namespace: String) {
        guard let pids = try? Self.output(["netns", "pids", namespace]) else { return }
        for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
    }

    static func sysctl(_ namespace: String, _ key: String, _ value: String) throws {
        try Self.run(["netns", "exec", namespace, "sh", "-c", "echo \(value) > /proc/sys/\(key)"])
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String { try Self.output(arguments) }

    /// Runs `ip ARGUMENTS` (or `ip netns exec …`) to its end; throws its error output on failure.
    static func output(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.ip)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HostsError(description: "ip \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(error)")
        }
        return text
    }
}

/// A host could not be made or changed; the message has the `ip` command and its error.
public struct HostsError: Error, CustomStringConvertible {
    public var description: String
}

