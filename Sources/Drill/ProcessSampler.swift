import Foundation
import RegistryKit
import SkyLib

/// Samples the memory (VmRSS) and open descriptors of the cluster's router and initiator
/// processes on this machine once a second while a drill runs: a drill is also how a soak
/// shows memory stays flat under load and faults.
final class ProcessSampler: Sendable {
    /// One process's samples.
    struct Series: Sendable {
        /// `router at 127.0.0.1:8080`.
        var name: String
        var pid: Int32
        /// Resident memory, KiB, one a second.
        var rss: [Int] = []
        /// Open descriptors, one a second.
        var descriptors: [Int] = []
    }

    private let registry: any NodeDirectory
    private let series = Locked<[Int32: Series]>([:])

    init(registry: any NodeDirectory) {
        self.registry = registry
    }

    /// Samples every second until `isDone` says so.
    func run(until isDone: @escaping @Sendable () -> Bool) async {
        while !isDone() {
            let nodes = ((try? await self.registry.nodes()) ?? []).filter { ($0.kind == .router || $0.kind == .initiator) && $0.status == .ready }
            for node in nodes {
                guard let process = LocalProcess.verified(pid: node.pid, address: node.address), let rss = Self.rss(process.pid) else { continue }
                let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/fd")) ?? []).count
                self.series.withLock { series in
                    series[process.pid, default: Series(name: "\(node.kind.rawValue) at \(node.address)", pid: process.pid)].rss.append(rss)
                    series[process.pid]?.descriptors.append(descriptors)
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Every process sampled, in the order first seen (by pid).
    var samples: [Series] { self.series.withLock { Array($0.values) }.sorted { $0.pid < $1.pid } }

    /// VmRSS of `pid`, KiB.
    static func rss(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }
}
