public import RegistryKit
import SkyLib

/// What a name below the domain asks for, as SkyDNS spelled it:
/// `[id.][host.][region.][version.]SERVICE.ENVIRONMENT`. Labels are matched from the right;
/// missing leading labels, and any label that is `any`, match everything.
///
/// Node values become labels by `DNSLabel.sanitized` (lower case, dots and other
/// characters as hyphens): version `1.2.0` is `1-2-0`, and a version label also matches by
/// its leading parts (`1` is every 1.x.y, `1-2` every 1.2.y). A host matches by its whole
/// name or its first label; an id by the whole id, or a prefix or suffix of at least 8
/// characters (`sky nodes` shows the last 8).
public struct DNSServiceQuery: Sendable, Equatable {
    /// The environment label, `nil` for any.
    public var environment: String?
    /// The service label, `nil` for any.
    public var service: String?
    /// The version label, `nil` for any.
    public var version: String?
    /// The region label, `nil` for any.
    public var region: String?
    /// The host label, `nil` for any.
    public var host: String?
    /// The id label, `nil` for any.
    public var id: String?

    /// The query for the labels below the domain, or `nil` when there are more than six.
    public init?(labels: [String]) {
        guard labels.count <= 6 else { return nil }
        var slots: [String?] = Array(repeating: nil, count: 6)   // id, host, region, version, service, environment
        for (offset, label) in labels.reversed().enumerated() {
            let lowered = label.lowercased()
            slots[5 - offset] = lowered == "any" ? nil : lowered
        }
        (self.id, self.host, self.region, self.version, self.service, self.environment) = (slots[0], slots[1], slots[2], slots[3], slots[4], slots[5])
    }

    /// Whether `node` is named by this query.
    public func matches(_ node: NodeRecord) -> Bool {
        if let environment, DNSLabel.sanitized(node.environment) != environment { return false }
        if let service, DNSLabel.sanitized(node.service) != service { return false }
        if let version {
            let label = DNSLabel.sanitized(node.version)
            guard label == version || label.hasPrefix(version + "-") else { return false }
        }
        if let region, DNSLabel.sanitized(node.region) != region { return false }
        if let host {
            let first = String(node.host.split(separator: ".").first ?? "")
            guard DNSLabel.sanitized(node.host) == host || DNSLabel.sanitized(first) == host else { return false }
        }
        if let id {
            let nodeID = node.id.lowercased()
            guard nodeID == id || (id.count >= 8 && Identifiers.matches(nodeID, typed: id)) else { return false }
        }
        return true
    }

    /// The fully specified labels of `node`: the SRV target names the one instance.
    public static func labels(of node: NodeRecord) -> [String] {
        [node.id.lowercased(), DNSLabel.sanitized(node.host), DNSLabel.sanitized(node.region), DNSLabel.sanitized(node.version),
         DNSLabel.sanitized(node.service), DNSLabel.sanitized(node.environment)]
    }
}
