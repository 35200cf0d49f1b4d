import Foundation
public import Logging
public import RegistryKit
public import SkyLib

/// The registry records of the programs a daemon runs.
public enum ProgramRecords {
    /// A program's process ended: its node records (this host, its pid) are removed at once,
    /// so tools and routers stop counting a dead node instead of waiting for a reaper's TTL.
    /// A program that drained and deregistered itself has none left; nothing is removed then.
    public static func remove(
        of program: String, pid: Int32, status: String, registry: any NodeDirectory & EventLog, counters: Counters, logger: Logger
    ) async {
        guard pid > 0 else { return }
        let host = ProcessInfo.processInfo.hostName
        do {
            let records = try await registry.nodes().filter { $0.pid == pid && $0.host == host && $0.kind != .daemon }
            for record in records {
                try await registry.deregister(nodeID: record.id)
                counters.add("daemon.\(program)-records-removed")
                try await registry.record(RegistryEvent(
                    kind: "exited", nodeID: record.id, service: record.service,
                    message: "\(record.service) at \(record.address) (pid \(pid)) ended (\(status)); its daemon removed the record at once"
                ))
            }
        } catch {
            // The reaper removes it after its TTL instead; nothing is lost but time.
            counters.add("daemon.record-removal-errors")
            logger.error("cannot remove the record of a program that ended; the reaper will", metadata: ["program": "\(program)", "pid": "\(pid)", "error": "\(error)"])
        }
    }
}
