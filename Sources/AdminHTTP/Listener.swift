import Glibc
public import Hummingbird
public import SkyLib
public import ServiceLifecycle
import NIOCore

/// Runs HTTP applications so that a listener that cannot start says where and why.
///
/// A port already in use (or a host that is not this machine's, or a port below 1024 without
/// the right) surfaces from NIO as `bind(…): Address already in use (errno: 98)`, naming no
/// address; every role (`sky run`, `router`, `service`, `dashboard`, `--admin`) runs its
/// listener through here so the error that ends the process names it.
public enum Listener {
    /// Runs `app` until it stops; a failure to listen on `host:port` is rethrown as a
    /// ``SkyError`` (`configuration_error`) naming the address and the reason.
    public static func run(_ app: some ApplicationProtocol, host: String, port: Int) async throws {
        do {
            try await app.run()
        } catch let error as IOError {
            throw Self.failure(error, host: host, port: port)
        }
    }

    /// The error to report when `host:port` cannot be listened on.
    public static func failure(_ error: IOError, host: String, port: Int) -> SkyError {
        let reason = String(cString: strerror(error.errnoCode))
        var hint = ""
        switch error.errnoCode {
        case EADDRINUSE: hint = " (another process holds it: pick another with the flag, or stop that process)"
        case EADDRNOTAVAIL: hint = " (that address is not one of this machine's)"
        case EACCES: hint = " (ports below 1024 need privileges)"
        default: break
        }
        return SkyError(.configuration, "cannot listen on \(host):\(port): \(reason)\(hint)")
    }
}

/// An application as a `Service` whose failure to listen names its address (``Listener``),
/// for placing in a `ServiceGroup`.
public struct ListeningApplication<App: ApplicationProtocol>: Service {
    /// The application served.
    public let app: App
    /// The interface listened on.
    public let host: String
    /// The port listened on (0: a free one).
    public let port: Int

    /// Creates a `ListeningApplication` from its parts.
    public init(_ app: App, host: String, port: Int) {
        self.app = app
        self.host = host
        self.port = port
    }

    public func run() async throws {
        try await Listener.run(self.app, host: self.host, port: self.port)
    }
}
