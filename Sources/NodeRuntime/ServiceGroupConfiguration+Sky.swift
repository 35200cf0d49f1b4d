public import Logging
public import ServiceLifecycle
import UnixSignals
import SkyLib
import RouteModel
import RegistryKit

extension ServiceGroupConfiguration {
    /// How every `sky` role runs its services. A service that fails (a listener that cannot
    /// bind, say) shuts the group down gracefully, so the others drain and deregister, and the
    /// group then throws that service's error: the process says why and exits non-zero.
    /// SIGTERM and SIGINT shut down gracefully; a graceful shutdown that has not ended after
    /// `gracefulLimit` turns into cancellation, so no state leaves the process running.
    public static func sky(services: [any Service], logger: Logger, gracefulLimit: Duration = .seconds(30)) -> ServiceGroupConfiguration {
        var configuration = ServiceGroupConfiguration(
            services: services.map { ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = gracefulLimit
        return configuration
    }
}
