import SkyLib
/// The cluster's log of what happened to its nodes: registered, deregistered, reaped …
public protocol EventLog: Sendable {
    /// Appends an event to the cluster's log.
    func record(_ event: RegistryEvent) async throws

    /// The most recent events, newest first.
    func events(limit: Int) async throws -> [RegistryEvent]
}
