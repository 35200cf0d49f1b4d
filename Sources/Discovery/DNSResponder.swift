#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import RegistryKit
import SkyLib

/// Answers DNS queries for the nodes in the registry (see ``DNSServiceQuery`` for the names).
///
/// Pure: it reads the nodes it is given and builds the answer, so it can run on an event loop.
/// SRV answers list one record per ready instance, with the instance's own name as target and
/// that name's A or AAAA record in the additional section; instances in the region asked for
/// (or the server's own) get priority 10, the others 20. Every TTL is the seconds the node
/// has left before it would expire, so a resolver never keeps an instance longer than the
/// registry would.
public struct DNSResponder: Sendable {
    /// The zone, `skydns.local.` by default.
    public var domain: DNSName
    /// The server's own region: its instances come first when the name asks for no region.
    public var region: String?
    /// The UDP payload this server offers in EDNS0 answers.
    public static let udpPayloadSize: UInt16 = 1232
    /// Negative answers may be cached this long (the SOA's minimum and TTL).
    public static let negativeTTL: UInt32 = 5

    /// Creates a `DNSResponder` for `domain`.
    public init(domain: DNSName, region: String? = nil) {
        self.domain = domain
        self.region = region.map(DNSLabel.sanitized)
    }

    /// The answer to `query` given the ready nodes and their seconds left, or `nil` for a
    /// message that must not be answered (a response).
    public func respond(to query: DNSMessage, nodes: [(node: NodeRecord, secondsLeft: Double)]) -> DNSMessage? {
        guard !query.isResponse else { return nil }
        var answer = DNSMessage(
            id: query.id, isResponse: true, opcode: query.opcode, isAuthoritative: true, recursionDesired: query.recursionDesired,
            questions: query.questions, edns: query.edns.map { _ in DNSMessage.EDNS(udpPayloadSize: Self.udpPayloadSize) }
        )
        guard query.opcode == 0 else { return answer.with(.notImplemented) }
        if let edns = query.edns, edns.version != 0 { return answer.with(.badVersion) }
        guard query.questions.count == 1, let question = query.questions.first else { return answer.with(.formatError) }
        guard question.dnsClass == 1 || question.dnsClass == 255 else { return answer.with(.refused) }
        guard let labels = question.name.labels(below: self.domain) else { return answer.with(.refused) }
        guard question.type != .axfr else { return answer.with(.notImplemented) }

        let soa = self.soa()
        if labels.isEmpty {
            // The zone's apex exists; it holds the SOA and nothing else.
            if question.type == .soa || question.type == .any { answer.answers = [soa] } else { answer.authorities = [soa] }
            return answer
        }
        guard let filter = DNSServiceQuery(labels: labels) else { return answer.with(.nameError, authority: soa) }
        let matches = nodes.filter { filter.matches($0.node) }.compactMap { entry in
            NodeAddress(entry.node.address).map { (node: entry.node, left: entry.secondsLeft, address: $0) }
        }
        guard !matches.isEmpty else { return answer.with(.nameError, authority: soa) }

        let preferred = filter.region ?? self.region
        for match in matches.sorted(by: { ($0.node.region, $0.node.id) < ($1.node.region, $1.node.id) }) {
            // A node added by hand never expires by TTL: an hour, like any long-lived record.
            let ttl = UInt32(min(max(0, match.left), 3600).rounded(.down))
            let target = self.targetName(of: match.node, address: match.address)
            switch question.type {
            case .srv, .any:
                let priority: UInt16 = preferred.map { DNSLabel.sanitized(match.node.region) == $0 ? 10 : 20 } ?? 10
                answer.answers.append(DNSRecord(name: question.name, ttl: ttl, data: .srv(priority: priority, weight: 10, port: match.address.port, target: target)))
                if let data = match.address.recordData { answer.additionals.append(DNSRecord(name: target, ttl: ttl, data: data)) }
            case .a, .aaaa:
                if let data = match.address.recordData, data.type == question.type {
                    answer.answers.append(DNSRecord(name: question.name, ttl: ttl, data: data))
                }
            default:
                break
            }
        }
        answer.answers.sort { lhs, rhs in
            if case .srv(let left, _, _, _) = lhs.data, case .srv(let right, _, _, _) = rhs.data { return left < right }
            return false
        }
        if answer.answers.isEmpty { answer.authorities = [soa] }      // the name exists, not this type
        return answer
    }

    /// The name of one instance: all six labels, so it matches that instance alone; for an
    /// address given as a host name, that name itself.
    private func targetName(of node: NodeRecord, address: NodeAddress) -> DNSName {
        guard address.recordData != nil else { return DNSName(address.host) }
        let name = self.domain.prefixed(with: DNSServiceQuery.labels(of: node))
        return name.wireLength <= 255 ? name : self.domain.prefixed(with: [node.id.lowercased(), "any", "any", "any", DNSLabel.sanitized(node.service), DNSLabel.sanitized(node.environment)])
    }

    private func soa() -> DNSRecord {
        DNSRecord(
            name: self.domain, ttl: Self.negativeTTL,
            data: .soa(
                primary: self.domain.prefixed(with: ["ns"]), mailbox: self.domain.prefixed(with: ["hostmaster"]),
                serial: 1, refresh: 60, retry: 30, expire: 600, minimum: Self.negativeTTL
            )
        )
    }
}

extension DNSMessage {
    /// The message with response code `rcode` (and an SOA in the authority section).
    func with(_ rcode: DNSResponseCode, authority: DNSRecord? = nil) -> DNSMessage {
        var message = self
        message.rcode = rcode
        if let authority { message.authorities = [authority] }
        return message
    }
}

/// A node's `HOST:PORT` (or `[V6]:PORT`), with its address bytes when the host is an IP.
struct NodeAddress {
    var host: String
    var port: UInt16
    var recordData: DNSRecordData?

    init?(_ address: String) {
        // A node serving TLS registers https://HOST:PORT; DNS answers HOST and PORT alike.
        let text = AdvertisedAddress.hostPort(address)
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[close...].dropFirst(2)
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            return nil
        }
        guard let number = UInt16(port), number > 0, !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = number
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, self.host, &v4) == 1 {
            self.recordData = .a(withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, self.host, &v6) == 1 {
            self.recordData = .aaaa(withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            self.recordData = nil
        }
    }
}
