import Foundation
public import Logging
public import ServiceLifecycle
import SkyLib
import RouteModel
public import TLS
import UnixSignals

/// Reads the process's TLS certificate and key again on SIGHUP, or when either file changes
/// on disk (checked every `interval`): renewed files serve every new connection without a
/// restart (open ones keep theirs). A failed reload keeps the old certificate and says why.
/// Once a day it also says when the certificate expires within a week.
public struct TLSReloadSignal: Service {
    private let tls: NodeTLS
    private let interval: Duration
    private let logger: Logger

    /// Creates a `TLSReloadSignal` from its parts.
    public init(tls: NodeTLS, interval: Duration = .seconds(2), logger: Logger) {
        self.tls = tls
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                let signals = await UnixSignalsSequence(trapping: .sighup)
                for await _ in signals.cancelOnGracefulShutdown() { self.reload(because: "SIGHUP") }
            }
            group.addTask {
                // Reloaded once the files changed and then stayed the same for an interval: a
                // renewal writes the certificate and the key one after the other.
                var loaded = self.fileStamps()
                var previous = loaded
                var lastExpiryCheck = ContinuousClock.now
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: self.interval)
                    let now = self.fileStamps()
                    if now != loaded && now == previous {
                        loaded = now
                        self.reload(because: "a change of its files")
                    }
                    previous = now
                    if ContinuousClock.now - lastExpiryCheck >= .seconds(86_400) {
                        lastExpiryCheck = ContinuousClock.now
                        if let warning = self.tls.expiryWarning() { self.logger.warning("\(warning)") }
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    private func reload(because reason: String) {
        do {
            try self.tls.reload()
            self.logger.notice("TLS certificate reloaded on \(reason)", metadata: ["certificate": "\(self.tls.files.certificate ?? "")"])
            if let warning = self.tls.expiryWarning() { self.logger.warning("\(warning)") }
        } catch {
            self.logger.error("TLS certificate not reloaded; the previous one stays in use", metadata: ["error": "\(error.message)"])
        }
    }

    /// Size and modification time of the certificate and key files (a renewal changes them).
    private func fileStamps() -> [String] {
        [self.tls.files.certificate, self.tls.files.key].compactMap { $0 }.map { path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(path) \(attributes?[.size] as? Int ?? -1) \(modified)"
        }
    }
}
