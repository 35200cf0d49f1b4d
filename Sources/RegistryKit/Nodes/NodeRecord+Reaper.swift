public import Foundation
import SkyLib

/// The stats a node running a reaper publishes about it, so any tool that reads the
/// registry (`sky nodes`, the dashboard) can say when and why the reaper holds back.
public enum ReaperStats {
    /// 1 while this node's reaper holds the lease.
    public static let active = "reaper-active"
    /// 1 while self-preservation holds the reaper back.
    public static let holdingBack = "reaper-holding-back"
    /// Since when (Unix seconds).
    public static let holdingBackSince = "reaper-holding-back-since"
    /// Nodes that looked dead in its latest pass.
    public static let lookDead = "reaper-look-dead"
    /// Nodes it reaped within its guard window.
    public static let reapedRecently = "reaper-reaped-recently"
    /// Nodes it saw within its guard window.
    public static let nodesSeen = "reaper-nodes-seen"
    /// The guard window, in seconds.
    public static let guardWindow = "reaper-guard-window"
}

extension NodeRecord {
    /// One line saying that this node's reaper is holding back and why, or `nil` when it is
    /// not (or the record is too old to say).
    public func reaperHoldingBack(at now: Date = Date()) -> String? {
        guard self.stats[ReaperStats.holdingBack] == 1, !self.isExpired(at: now) else { return nil }
        let since = Date(timeIntervalSince1970: TimeInterval(self.stats[ReaperStats.holdingBackSince] ?? 0))
        return String(
            format: "reaper on %@ (node %@) holding back for %.0fs: %lld node(s) look dead and %lld were reaped in the last %llds, of %lld seen; it assumes it is the one cut off and removes none",
            self.host, Identifiers.short(self.id), max(0, now.timeIntervalSince(since)), self.stats[ReaperStats.lookDead] ?? 0,
            self.stats[ReaperStats.reapedRecently] ?? 0, self.stats[ReaperStats.guardWindow] ?? 0, self.stats[ReaperStats.nodesSeen] ?? 0
        )
    }
}
