public import NIOCore
public import SkyLib
import RouteModel
public import RegistryKit

/// Calls one instance of a service. The seam between the router and the wire: the HTTP
/// client is the real one; tests may put an in-memory fake here beside end-to-end tests.
public protocol ServiceClient: Sendable {
    /// Sends `request` to `instance` and answers its response.
    /// - Parameter deadline: when to give up; the call fails with `.deadlineExceeded` then.
    /// - Throws: ``SkyError``; `isRetryable` says whether another attempt may help, and
    ///   `.connectionFailed` means the instance could not be reached at all.
    func call(_ request: RequestEnvelope, instance: NodeRecord, deadline: NIODeadline?) async throws(SkyError) -> ServiceResponse
}
