public import Logging
public import ServiceLifecycle
public import TLS
import UnixSignals
import SkyLib

/// Reads the process's TLS certificate and key again on SIGHUP: renewed files serve every new
/// connection without a restart (open ones keep theirs). A failed reload keeps the old
/// certificate and says why.
public struct TLSReloadSignal: Service {
    private let tls: NodeTLS
    private let logger: Logger

    /// Creates a `TLSReloadSignal` from its parts.
    public init(tls: NodeTLS, logger: Logger) {
        self.tls = tls
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try self.tls.reload()
                self.logger.notice("TLS certificate reloaded on SIGHUP", metadata: ["certificate": "\(self.tls.files.certificate ?? "")"])
                if let warning = self.tls.expiryWarning() { self.logger.warning("\(warning)") }
            } catch {
                self.logger.error("TLS certificate not reloaded; the previous one stays in use", metadata: ["error": "\(error.message)"])
            }
        }
    }
}
