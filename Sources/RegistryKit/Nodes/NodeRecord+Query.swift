import SkyLib

extension NodeRecord {
    /// Whether two records of one node agree on everything but heartbeat and stats.
    public func hasSameShape(as other: NodeRecord) -> Bool {
        self.id == other.id && self.kind == other.kind && self.service == other.service && self.version == other.version
            && self.region == other.region && self.host == other.host && self.address == other.address && self.status == other.status
    }
}
