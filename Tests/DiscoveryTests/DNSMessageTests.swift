import Discovery
import SkyLib
import SkyTestSupport
import Testing

/// The codec: queries as resolvers send them, answers that read back the same, compression,
/// and messages that must be refused (loops, overruns). A fuzz run over mutated queries and
/// answers: each either reads or fails with ``DNSFormatError``, and what reads writes back to
/// the same message.
@Suite struct DNSMessageTests {
    /// `dig SRV uppercase.production.skydns.local` with EDNS0 (4096 bytes): id 0x1234, RD.
    static let digQuery: [UInt8] = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        9, 0x75, 0x70, 0x70, 0x65, 0x72, 0x63, 0x61, 0x73, 0x65,                  // uppercase
        10, 0x70, 0x72, 0x6F, 0x64, 0x75, 0x63, 0x74, 0x69, 0x6F, 0x6E,           // production
        6, 0x73, 0x6B, 0x79, 0x64, 0x6E, 0x73, 5, 0x6C, 0x6F, 0x63, 0x61, 0x6C, 0, // skydns local
        0x00, 0x21, 0x00, 0x01,                                                    // SRV IN
        0, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,             // OPT 4096
    ]

    @Test func aResolversQueryReads() throws {
        let query = try DNSMessage(bytes: Self.digQuery)
        #expect(query.id == 0x1234 && query.recursionDesired && !query.isResponse)
        #expect(query.questions == [DNSQuestion(name: DNSName("uppercase.production.skydns.local."), type: .srv)])
        #expect(query.edns == DNSMessage.EDNS(udpPayloadSize: 4096))
        #expect(query.bytes() == Self.digQuery)
    }

    static func answer() -> DNSMessage {
        let name = DNSName("uppercase.production.skydns.local")
        let target = DNSName("0192f1a2-aaaa-7bbb-8ccc-123456789abc.vm.east.1-0-0.uppercase.production.skydns.local")
        return DNSMessage(
            id: 7, isResponse: true, isAuthoritative: true, recursionDesired: true, questions: [DNSQuestion(name: name, type: .srv)],
            answers: [DNSRecord(name: name, ttl: 2, data: .srv(priority: 10, weight: 10, port: 9001, target: target))],
            authorities: [DNSRecord(name: DNSName("skydns.local"), ttl: 5, data: .soa(primary: DNSName("ns.skydns.local"), mailbox: DNSName("hostmaster.skydns.local"), serial: 1, refresh: 60, retry: 30, expire: 600, minimum: 5))],
            additionals: [
                DNSRecord(name: target, ttl: 2, data: .a([127, 0, 0, 1])),
                DNSRecord(name: target, ttl: 2, data: .aaaa(Array(repeating: 0, count: 15) + [1])),
                DNSRecord(name: DNSName("x.skydns.local"), ttl: 1, data: .raw(.txt, [3, 0x61, 0x62, 0x63])),
            ],
            edns: DNSMessage.EDNS(udpPayloadSize: 1232)
        )
    }

    @Test func anAnswerReadsBackTheSameAndRepeatedNamesAreCompressed() throws {
        let answer = Self.answer()
        let bytes = answer.bytes()
        #expect(try DNSMessage(bytes: bytes) == answer)
        // The question name is written once; every later owner name is a two-byte pointer.
        let uncompressed = answer.questions[0].name.wireLength * 2 + answer.answers.count
        #expect(bytes.count < 12 + uncompressed + 200)
        #expect(bytes.count < answer.bytes(limit: nil).count + 1)
    }

    @Test func aLimitDropsAdditionalsFirstThenAnswersWithTheTruncatedFlag() throws {
        var answer = Self.answer()
        let full = answer.bytes()
        // Just too small for everything: additionals go, silently.
        let trimmed = try DNSMessage(bytes: answer.bytes(limit: full.count - 1))
        #expect(!trimmed.isTruncated && trimmed.answers == answer.answers && trimmed.additionals.count < answer.additionals.count)
        // Room for the header and question only: the answer goes, and TC says so.
        answer.additionals = []
        let bare = try DNSMessage(bytes: answer.bytes(limit: 80))
        #expect(bare.isTruncated && bare.answers.isEmpty)
    }

    @Test func loopsOverrunsAndTrailingBytesAreRefusedWithWhere() {
        // A pointer to itself, a pointer forward, a label past the end, a count with no record.
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        let cases: [([UInt8], String)] = [
            (header + [0xC0, 12, 0, 1, 0, 1], "does not point back"),
            (header + [0xC0, 40, 0, 1, 0, 1], "does not point back"),
            (header + [5, 0x61, 0x62], "runs past the end"),
            (header + [0, 0, 1], "ends early"),
            (header + [0, 0, 1, 0, 1, 0xFF], "after the last record"),
            ([0, 1, 0], "ends early"),
        ]
        for (bytes, expected) in cases {
            #expect(throws: DNSFormatError.self) { try DNSMessage(bytes: bytes) }
            do {
                _ = try DNSMessage(bytes: bytes)
            } catch {
                #expect(error.description.contains(expected) && error.description.contains("at byte"), "\(error)")
            }
        }
    }

    @Test func mutatedMessagesReadOrFailCleanlyAndWhatReadsWritesBack() throws {
        var mutator = Mutator(seed: 0xD45_0001)
        let seeds = [Self.digQuery, Self.answer().bytes()]
        var read = 0
        let responder = DNSResponder(domain: DNSName("skydns.local."))
        for index in 0..<Mutator.cases(default: 5000) {
            let bytes = mutator.mutate(seeds[index % 2])
            guard let message = try? DNSMessage(bytes: bytes) else { continue }
            read += 1
            // Whatever reads, writes back to a message that reads the same.
            #expect(try DNSMessage(bytes: message.bytes()) == message, "case \(index): \(bytes)")
            // And the responder answers it (or stays silent) without trouble.
            if let answer = responder.respond(to: message, nodes: []) { _ = answer.bytes(limit: 512) }
        }
        #expect(read > 0, "no mutated message read at all: the fuzz run tested nothing")
    }
}
