public import Foundation

/// Where each node's counts are kept so the cluster's totals survive the nodes (`sky stats`,
/// the dashboard): a G-Counter in the registry (``GCounter``).
public protocol CountStore: Sendable {
    /// Merges one node's counts: per name, the stored value becomes the larger of the stored
    /// and the given one, so a count written twice, late or out of order is never counted twice
    /// and never goes back.
    func mergeCounts(nodeID: String, counts: [String: Int64], at: Date) async throws

    /// Every node's counts, dead nodes' included (their last values stay in the totals).
    func counts() async throws -> GCounter
}
