public import Logging
public import SkyLib
import RouteModel
public import ServiceLifecycle
import UnixSignals
import RegistryKit

/// Changes the log level on signals, as the original Skynet did: SIGUSR1 raises it (more
/// detail), SIGUSR2 lowers it. Every change is logged at the new level's `notice`.
public struct LogLevelSignals: Service {
    private let control: LogLevelControl
    private let logger: Logger

    /// Creates a `LogLevelSignals` from its parts.
    public init(control: LogLevelControl, logger: Logger) {
        self.control = control
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigusr1, .sigusr2)
        for await signal in signals.cancelOnGracefulShutdown() {
            let level = signal == .sigusr1 ? self.control.raise() : self.control.lower()
            self.logger.notice("log level changed by \(signal)", metadata: ["level": "\(level)"])
        }
    }
}
