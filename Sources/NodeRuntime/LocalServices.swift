public import SkyLib
import RouteModel

/// Handlers hosted in this process, by node id: the router calls them without a socket.
public struct LocalServices: LocalServiceDirectory {
    /// The in-process handlers, by the node id their host registered.
    public let handlers: [String: any ServiceHandler]

    /// Creates a `LocalServices` from its parts.
    public init(handlers: [String: any ServiceHandler]) {
        self.handlers = handlers
    }

    public func handler(forNode nodeID: String) -> (any ServiceHandler)? {
        self.handlers[nodeID]
    }
}
