/// A resource record.
public struct DNSRecord: Sendable, Equatable {
    /// Its owner name.
    public var name: DNSName
    /// Its type.
    public var type: DNSRecordType
    /// Its class; 1 is IN.
    public var dnsClass: UInt16
    /// Seconds a resolver may keep it.
    public var ttl: UInt32
    /// Its data.
    public var data: DNSRecordData

    /// Creates a `DNSRecord` from its parts; the type follows from `data`.
    public init(name: DNSName, ttl: UInt32, data: DNSRecordData, dnsClass: UInt16 = 1) {
        self.name = name
        self.type = data.type
        self.dnsClass = dnsClass
        self.ttl = ttl
        self.data = data
    }

    /// A record read off the wire, of any type.
    init(name: DNSName, type: DNSRecordType, dnsClass: UInt16, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.type = type
        self.dnsClass = dnsClass
        self.ttl = ttl
        self.data = data
    }
}

/// The data of a record, for the types `sky dns` writes; any other type stays raw.
public enum DNSRecordData: Sendable, Equatable {
    /// An IPv4 address, four bytes.
    case a([UInt8])
    /// An IPv6 address, sixteen bytes.
    case aaaa([UInt8])
    /// A service location (RFC 2782).
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    /// A zone's start of authority.
    case soa(primary: DNSName, mailbox: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
    /// Any other type's data, as sent.
    case raw(DNSRecordType, [UInt8])

    /// The record type this data belongs to.
    public var type: DNSRecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .srv: .srv
        case .soa: .soa
        case .raw(let type, _): type
        }
    }
}
