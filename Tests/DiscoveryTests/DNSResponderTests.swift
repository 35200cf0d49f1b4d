import Discovery
import Foundation
import RegistryKit
import Testing

/// What `sky dns` answers, given the ready nodes (the server passes the registry cache's).
@Suite struct DNSResponderTests {
    static let domain = DNSName("skydns.local.")
    static let east = NodeRecord(id: "0192f1a2-0000-7000-8000-00000000000e", kind: .service, service: "uppercase", version: "1.2.0", region: "east", host: "vm", address: "10.0.0.5:9001", status: .ready)
    static let west = NodeRecord(id: "0192f1a2-0000-7000-8000-00000000000f", kind: .service, service: "uppercase", version: "2.0.0", region: "west", host: "box.example.com", address: "[::1]:9002", status: .ready)
    static let staging = NodeRecord(id: "0192f1a2-0000-7000-8000-000000000005", kind: .service, service: "uppercase", version: "1.2.0", region: "east", environment: "staging", host: "vm", address: "10.0.0.6:9003", status: .ready)
    static let nodes: [(node: NodeRecord, secondsLeft: Double)] = [(east, 2.7), (west, 1.2), (staging, 3)]

    static func ask(_ name: String, _ type: DNSRecordType = .srv, region: String? = "east", edns: Bool = false) -> DNSMessage {
        let query = DNSMessage(id: 9, recursionDesired: true, questions: [DNSQuestion(name: DNSName(name), type: type)], edns: edns ? .init(udpPayloadSize: 4096) : nil)
        return DNSResponder(domain: Self.domain, region: region).respond(to: query, nodes: Self.nodes)!
    }

    static func srv(_ answer: DNSMessage) -> [(priority: UInt16, port: UInt16, target: String, ttl: UInt32)] {
        answer.answers.compactMap { record in
            guard case .srv(let priority, _, let port, let target) = record.data else { return nil }
            return (priority, port, target.description, record.ttl)
        }
    }

    @Test func srvListsEveryReadyInstanceOwnRegionFirstWithTheTimeLeftAsTTL() {
        let answer = Self.ask("uppercase.production.skydns.local.")
        #expect(answer.rcode == .noError && answer.isAuthoritative && answer.isResponse && answer.id == 9)
        let records = Self.srv(answer)
        #expect(records.map(\.port) == [9001, 9002])
        #expect(records.map(\.priority) == [10, 20])
        #expect(records.map(\.ttl) == [2, 1])
        #expect(records[0].target == "0192f1a2-0000-7000-8000-00000000000e.vm.east.1-2-0.uppercase.production.skydns.local.")
        // Each target's address in the additional section: A for IPv4, AAAA for IPv6.
        #expect(answer.additionals.map(\.type) == [.a, .aaaa])
        #expect(answer.additionals.first?.data == .a([10, 0, 0, 5]))
    }

    /// A node serving TLS registers `https://HOST:PORT`; DNS answers its host and port alike.
    @Test func aTLSNodesAddressIsAnsweredWithoutItsScheme() {
        var secure = Self.east
        secure.address = "https://10.0.0.7:9443"
        let query = DNSMessage(id: 3, recursionDesired: true, questions: [DNSQuestion(name: DNSName("uppercase.production.skydns.local."), type: .srv)], edns: nil)
        let answer = DNSResponder(domain: Self.domain, region: "east").respond(to: query, nodes: [(secure, 2.5)])!
        #expect(Self.srv(answer).map(\.port) == [9443])
        #expect(answer.additionals.first?.data == .a([10, 0, 0, 7]))
    }

    @Test func theRegionAskedForWinsOverTheServersOwn() {
        let records = Self.srv(Self.ask("west.any.uppercase.production.skydns.local."))
        #expect(records.map(\.port) == [9002])
        let anyRegion = Self.srv(Self.ask("any.any.uppercase.production.skydns.local.", region: "west"))
        #expect(anyRegion.first(where: { $0.port == 9002 })?.priority == 10 && anyRegion.first(where: { $0.port == 9001 })?.priority == 20)
    }

    @Test func labelsNarrowByVersionHostAndId() {
        #expect(Self.srv(Self.ask("1.uppercase.production.skydns.local.")).map(\.port) == [9001])
        #expect(Self.srv(Self.ask("1-2-0.uppercase.production.skydns.local.")).map(\.port) == [9001])
        #expect(Self.srv(Self.ask("box.any.any.uppercase.production.skydns.local.")).map(\.port) == [9002])
        #expect(Self.srv(Self.ask("0192f1a2-0000-7000-8000-00000000000f.any.any.any.uppercase.production.skydns.local.")).map(\.port) == [9002])
        #expect(Self.srv(Self.ask("uppercase.staging.skydns.local.")).map(\.port) == [9003])
        #expect(Self.srv(Self.ask("UpperCase.Production.SKYDNS.local.")).count == 2)
        #expect(Self.srv(Self.ask("production.skydns.local.")).count == 2)
    }

    @Test func anInstancesOwnNameAnswersItsAddress() {
        let a = Self.ask("0192f1a2-0000-7000-8000-00000000000e.vm.east.1-2-0.uppercase.production.skydns.local.", .a)
        #expect(a.answers.map(\.data) == [.a([10, 0, 0, 5])])
        let aaaa = Self.ask("west.any.uppercase.production.skydns.local.", .aaaa)
        #expect(aaaa.answers.map(\.data) == [.aaaa(Array(repeating: 0, count: 15) + [1])])
    }

    @Test func nxdomainNodataRefusedAndTheApex() {
        let missing = Self.ask("nothing.production.skydns.local.")
        #expect(missing.rcode == .nameError && missing.answers.isEmpty && missing.authorities.first?.type == .soa)
        // The name exists, not that type: NOERROR, no answer, the SOA for negative caching.
        let txt = Self.ask("uppercase.production.skydns.local.", .txt)
        #expect(txt.rcode == .noError && txt.answers.isEmpty && txt.authorities.first?.type == .soa)
        #expect(Self.ask("a.b.c.d.e.f.g.skydns.local.").rcode == .nameError)
        #expect(Self.ask("uppercase.production.example.com.").rcode == .refused)
        let apex = Self.ask("skydns.local.", .soa)
        #expect(apex.rcode == .noError && apex.answers.first?.type == .soa)
    }

    @Test func ednsIsAnsweredInKindAndAnUnknownVersionIsBadvers() {
        #expect(Self.ask("uppercase.production.skydns.local.", edns: true).edns?.udpPayloadSize == DNSResponder.udpPayloadSize)
        #expect(Self.ask("uppercase.production.skydns.local.").edns == nil)
        let query = DNSMessage(id: 1, questions: [DNSQuestion(name: DNSName("uppercase.production.skydns.local."), type: .srv)], edns: .init(udpPayloadSize: 512, version: 1))
        let answer = DNSResponder(domain: Self.domain).respond(to: query, nodes: Self.nodes)!
        #expect(answer.rcode == .badVersion)
        // The extended code travels in the OPT record and reads back whole.
        #expect((try? DNSMessage(bytes: answer.bytes()))?.rcode == .badVersion)
    }

    @Test func responsesAndOddQueriesAreNotAnsweredAsQueries() {
        let responder = DNSResponder(domain: Self.domain)
        #expect(responder.respond(to: DNSMessage(id: 1, isResponse: true), nodes: []) == nil)
        #expect(responder.respond(to: DNSMessage(id: 1, opcode: 2, questions: []), nodes: [])?.rcode == .notImplemented)
        #expect(responder.respond(to: DNSMessage(id: 1, questions: []), nodes: [])?.rcode == .formatError)
    }
}
