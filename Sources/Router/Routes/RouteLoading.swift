public import ServiceLifecycle

/// Something that keeps a ``RouteTable`` current: a routes folder or the registry.
public protocol RouteLoading: Service {
    /// The table kept current.
    var table: RouteTable { get }
    /// Brings the table up to date once, now (before serving, and in tests).
    func reloadNow() async
}

extension RouteDirectoryLoader: RouteLoading {
    public func reloadNow() async { await self.reload() }
}
