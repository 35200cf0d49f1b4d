import Foundation
import RegistryKit
import SkyLib
import RouteModel
import Telemetry

// The command line is the one place that reads the process's environment: library code takes
// the values (or the whole environment) as arguments.

/// The registry as `sky` resolves it, from this process's environment.
extension RegistryAddress {
    /// The registry from `--registry`, else `SKYNET_REGISTRY` (or the file `SKYNET_REGISTRY_FILE`
    /// names), else the embedded default.
    static func resolve(flag: String?) throws(SkyError) -> RegistryAddress {
        try Self.resolve(flag: flag, environment: ProcessInfo.processInfo.environment)
    }
}

/// The collector as `sky` resolves it, from this process's environment.
extension OTLPEndpoint {
    /// The collector from `--otlp`, else `OTEL_EXPORTER_OTLP_ENDPOINT` (and its headers).
    static func resolve(flag: String?) throws(SkyError) -> OTLPEndpoint? {
        try Self.resolve(flag: flag, environment: ProcessInfo.processInfo.environment)
    }

    /// The metrics collector for `--otlp` and this process's environment.
    static func resolveMetrics(flag: String?) throws(SkyError) -> OTLPEndpoint? {
        try Self.resolveMetrics(flag: flag, environment: ProcessInfo.processInfo.environment)
    }
}

/// Who issued a command, as `sky` describes it from this process's environment.
extension CommandIssuer {
    /// `sky VERB by USER@HOST`, the user from this process's environment.
    static func describeIssuer(verb: String) -> String {
        Self.describeIssuer(verb: verb, environment: ProcessInfo.processInfo.environment)
    }
}
