/// A DNS message (RFC 1035, with the EDNS0 OPT record of RFC 6891), as much of it as
/// `sky dns` reads and writes: the header, questions, and records of the types it answers
/// (other types are carried as raw data).
public struct DNSMessage: Sendable, Equatable {
    /// The query id, copied into the answer.
    public var id: UInt16
    /// Whether this is a response.
    public var isResponse: Bool
    /// The kind of query; 0 is a standard query.
    public var opcode: UInt8
    /// Authoritative answer.
    public var isAuthoritative: Bool
    /// Truncated: the whole answer did not fit (ask again over TCP).
    public var isTruncated: Bool
    /// Recursion desired (copied into the answer).
    public var recursionDesired: Bool
    /// Recursion available.
    public var recursionAvailable: Bool
    /// The response code's low four bits (the rest is in the OPT record).
    public var rcode: DNSResponseCode
    /// The questions.
    public var questions: [DNSQuestion]
    /// The answer section.
    public var answers: [DNSRecord]
    /// The authority section.
    public var authorities: [DNSRecord]
    /// The additional section, without the OPT record.
    public var additionals: [DNSRecord]
    /// EDNS0, when the message carries an OPT record.
    public var edns: EDNS?

    /// Creates a `DNSMessage` from its parts.
    public init(
        id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, isAuthoritative: Bool = false, isTruncated: Bool = false,
        recursionDesired: Bool = false, recursionAvailable: Bool = false, rcode: DNSResponseCode = .noError,
        questions: [DNSQuestion] = [], answers: [DNSRecord] = [], authorities: [DNSRecord] = [], additionals: [DNSRecord] = [], edns: EDNS? = nil
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    /// EDNS0 as an OPT record carries it.
    public struct EDNS: Sendable, Equatable {
        /// The largest UDP payload the sender can take.
        public var udpPayloadSize: UInt16
        /// The upper eight bits of the response code.
        public var extendedRcode: UInt8
        /// The EDNS version; only 0 exists.
        public var version: UInt8
        /// DNSSEC OK.
        public var dnssecOK: Bool

        /// Creates an `EDNS` from its parts.
        public init(udpPayloadSize: UInt16, extendedRcode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false) {
            self.udpPayloadSize = udpPayloadSize
            self.extendedRcode = extendedRcode
            self.version = version
            self.dnssecOK = dnssecOK
        }
    }
}

/// A question: a name, a type and a class.
public struct DNSQuestion: Sendable, Equatable {
    /// The name asked for.
    public var name: DNSName
    /// The record type asked for.
    public var type: DNSRecordType
    /// The class; 1 is IN.
    public var dnsClass: UInt16

    /// Creates a `DNSQuestion` from its parts.
    public init(name: DNSName, type: DNSRecordType, dnsClass: UInt16 = 1) {
        self.name = name
        self.type = type
        self.dnsClass = dnsClass
    }
}

/// A response code (RFC 1035 and 6891).
public struct DNSResponseCode: RawRepresentable, Sendable, Equatable, Hashable {
    /// The code (12 bits with EDNS).
    public var rawValue: UInt16
    /// Creates a `DNSResponseCode` from its number.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No error.
    public static let noError = DNSResponseCode(rawValue: 0)
    /// The query could not be read.
    public static let formatError = DNSResponseCode(rawValue: 1)
    /// The server failed.
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    /// The name does not exist.
    public static let nameError = DNSResponseCode(rawValue: 3)
    /// The kind of query is not implemented.
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    /// The server will not answer (a name outside its domain).
    public static let refused = DNSResponseCode(rawValue: 5)
    /// An EDNS version the server does not speak.
    public static let badVersion = DNSResponseCode(rawValue: 16)
}

/// A record type.
public struct DNSRecordType: RawRepresentable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The type number.
    public var rawValue: UInt16
    /// Creates a `DNSRecordType` from its number.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 address.
    public static let a = DNSRecordType(rawValue: 1)
    /// Name server.
    public static let ns = DNSRecordType(rawValue: 2)
    /// Start of authority.
    public static let soa = DNSRecordType(rawValue: 6)
    /// Text.
    public static let txt = DNSRecordType(rawValue: 16)
    /// IPv6 address.
    public static let aaaa = DNSRecordType(rawValue: 28)
    /// Service location (RFC 2782).
    public static let srv = DNSRecordType(rawValue: 33)
    /// EDNS0 options.
    public static let opt = DNSRecordType(rawValue: 41)
    /// Zone transfer (refused).
    public static let axfr = DNSRecordType(rawValue: 252)
    /// Any type.
    public static let any = DNSRecordType(rawValue: 255)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .soa: "SOA"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        case .opt: "OPT"
        case .axfr: "AXFR"
        case .any: "ANY"
        default: "TYPE\(self.rawValue)"
        }
    }
}
