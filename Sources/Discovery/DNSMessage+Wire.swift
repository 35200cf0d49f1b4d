/// A message that could not be read: what was wrong, and at which byte.
public struct DNSFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    public var message: String
    /// The byte offset where reading stopped.
    public var offset: Int

    public var description: String { "malformed DNS message at byte \(self.offset): \(self.message)" }
}

extension DNSMessage {
    /// Reads a message. Every length and pointer is checked against the bytes there are;
    /// compression pointers must point backwards (so they cannot loop), and names are at
    /// most 255 bytes.
    /// - Throws: ``DNSFormatError`` naming what was wrong and where.
    public init(bytes: [UInt8]) throws(DNSFormatError) {
        var reader = DNSReader(bytes: bytes)
        self.id = try reader.u16()
        let flags = try reader.u16()
        self.isResponse = flags & 0x8000 != 0
        self.opcode = UInt8((flags >> 11) & 0xF)
        self.isAuthoritative = flags & 0x0400 != 0
        self.isTruncated = flags & 0x0200 != 0
        self.recursionDesired = flags & 0x0100 != 0
        self.recursionAvailable = flags & 0x0080 != 0
        var rcode = flags & 0xF
        let counts = (try reader.u16(), try reader.u16(), try reader.u16(), try reader.u16())
        self.questions = []
        for _ in 0..<counts.0 {
            self.questions.append(DNSQuestion(name: try reader.name(), type: DNSRecordType(rawValue: try reader.u16()), dnsClass: try reader.u16()))
        }
        self.answers = try (0..<counts.1).map { _ throws(DNSFormatError) in try reader.record() }
        self.authorities = try (0..<counts.2).map { _ throws(DNSFormatError) in try reader.record() }
        self.additionals = []
        self.edns = nil
        for _ in 0..<counts.3 {
            let record = try reader.record()
            guard record.type == .opt else {
                self.additionals.append(record)
                continue
            }
            guard self.edns == nil else { throw DNSFormatError(message: "more than one OPT record", offset: reader.offset) }
            guard record.name.labels.isEmpty else { throw DNSFormatError(message: "an OPT record must be owned by the root", offset: reader.offset) }
            // OPT: the class is the payload size, the TTL carries extended rcode, version, DO.
            let edns = EDNS(
                udpPayloadSize: record.dnsClass, extendedRcode: UInt8(record.ttl >> 24), version: UInt8((record.ttl >> 16) & 0xFF),
                dnssecOK: record.ttl & 0x8000 != 0
            )
            rcode |= UInt16(edns.extendedRcode) << 4
            self.edns = edns
        }
        self.rcode = DNSResponseCode(rawValue: rcode)
        guard reader.offset == bytes.count else { throw DNSFormatError(message: "\(bytes.count - reader.offset) bytes after the last record", offset: reader.offset) }
    }

    /// The message on the wire, with names compressed. When `limit` is given and the whole
    /// message is longer, records are left out from the end (additional, then authority, then
    /// answers) until it fits, and the truncated flag is set if an answer or authority record
    /// had to go (RFC 2181, 9: additional records may be dropped silently).
    public func bytes(limit: Int? = nil) -> [UInt8] {
        var message = self
        var encoded = message.encoded()
        guard let limit, encoded.count > limit else { return encoded }
        while encoded.count > limit {
            if !message.additionals.isEmpty {
                message.additionals.removeLast()
            } else if !message.authorities.isEmpty {
                message.authorities.removeLast()
                message.isTruncated = true
            } else if !message.answers.isEmpty {
                message.answers.removeLast()
                message.isTruncated = true
            } else {
                break
            }
            encoded = message.encoded()
        }
        return encoded
    }

    /// The message in wire format (RFC 1035 §4.1): header, questions, then every record, names
    /// compressed; EDNS0 as the OPT pseudo-record the additional count includes, carrying the high
    /// bits of an extended rcode.
    private func encoded() -> [UInt8] {
        var writer = DNSWriter()
        writer.u16(self.id)
        var flags = UInt16(self.opcode & 0xF) << 11 | (self.rcode.rawValue & 0xF)
        if self.isResponse { flags |= 0x8000 }
        if self.isAuthoritative { flags |= 0x0400 }
        if self.isTruncated { flags |= 0x0200 }
        if self.recursionDesired { flags |= 0x0100 }
        if self.recursionAvailable { flags |= 0x0080 }
        writer.u16(flags)
        writer.u16(UInt16(self.questions.count))
        writer.u16(UInt16(self.answers.count))
        writer.u16(UInt16(self.authorities.count))
        writer.u16(UInt16(self.additionals.count + (self.edns == nil ? 0 : 1)))
        for question in self.questions {
            writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.dnsClass)
        }
        for record in self.answers + self.authorities + self.additionals { writer.record(record) }
        if let edns = self.edns {
            writer.bytes.append(0)                          // the root
            writer.u16(DNSRecordType.opt.rawValue)
            writer.u16(edns.udpPayloadSize)
            let extended = UInt32(self.rcode.rawValue >> 4) & 0xFF
            writer.u32(extended << 24 | UInt32(edns.version) << 16 | (edns.dnssecOK ? 0x8000 : 0))
            writer.u16(0)                                   // no options
        }
        return writer.bytes
    }
}

/// Reads big-endian numbers and names off a message, checking every bound.
struct DNSReader {
    /// The whole message: compression pointers point anywhere in it.
    let bytes: [UInt8]
    /// Where the next read starts.
    var offset = 0

    /// One byte; a message that ends early is a format error naming where.
    mutating func u8() throws(DNSFormatError) -> UInt8 {
        guard self.offset < self.bytes.count else { throw DNSFormatError(message: "message ends early", offset: self.offset) }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    mutating func u16() throws(DNSFormatError) -> UInt16 {
        UInt16(try self.u8()) << 8 | UInt16(try self.u8())
    }

    mutating func u32() throws(DNSFormatError) -> UInt32 {
        UInt32(try self.u16()) << 16 | UInt32(try self.u16())
    }

    /// `count` bytes, refusing a length that announces more than is left (a hostile length never
    /// reads past the end).
    mutating func take(_ count: Int) throws(DNSFormatError) -> [UInt8] {
        guard count <= self.bytes.count - self.offset else { throw DNSFormatError(message: "\(count) bytes announced, \(self.bytes.count - self.offset) left", offset: self.offset) }
        defer { self.offset += count }
        return Array(self.bytes[self.offset..<self.offset + count])
    }

    /// A name, following compression pointers; the reader moves past the name as written here.
    mutating func name() throws(DNSFormatError) -> DNSName {
        var labels: [String] = []
        var position = self.offset
        var resumeAt: Int?
        var length = 1
        while true {
            guard position < self.bytes.count else { throw DNSFormatError(message: "name runs past the end", offset: position) }
            let byte = self.bytes[position]
            switch byte & 0xC0 {
            case 0x00:
                if byte == 0 {
                    self.offset = resumeAt ?? position + 1
                    return DNSName(labels: labels)
                }
                let count = Int(byte)
                guard position + 1 + count <= self.bytes.count else { throw DNSFormatError(message: "label runs past the end", offset: position) }
                length += 1 + count
                guard length <= 255 else { throw DNSFormatError(message: "name longer than 255 bytes", offset: position) }
                labels.append(String(decoding: self.bytes[(position + 1)...(position + count)], as: UTF8.self))
                position += 1 + count
            case 0xC0:
                guard position + 1 < self.bytes.count else { throw DNSFormatError(message: "pointer runs past the end", offset: position) }
                let target = Int(byte & 0x3F) << 8 | Int(self.bytes[position + 1])
                // Only backwards: a pointer to itself or ahead could loop.
                guard target < position else { throw DNSFormatError(message: "compression pointer to \(target) does not point back", offset: position) }
                if resumeAt == nil { resumeAt = position + 2 }
                position = target
            default:
                throw DNSFormatError(message: "label type 0x\(String(byte & 0xC0, radix: 16)) is not supported", offset: position)
            }
        }
    }

    /// One resource record: name, type, class, TTL and its data (kept raw for types this server
    /// does not read).
    mutating func record() throws(DNSFormatError) -> DNSRecord {
        let name = try self.name()
        let type = DNSRecordType(rawValue: try self.u16())
        let dnsClass = try self.u16()
        let ttl = try self.u32()
        let length = Int(try self.u16())
        let end = self.offset + length
        guard end <= self.bytes.count else { throw DNSFormatError(message: "record data of \(length) bytes runs past the end", offset: self.offset) }
        let data: DNSRecordData
        switch type {
        case .a where length == 4: data = .a(try self.take(4))
        case .aaaa where length == 16: data = .aaaa(try self.take(16))
        case .srv:
            let priority = try self.u16(), weight = try self.u16(), port = try self.u16()
            data = .srv(priority: priority, weight: weight, port: port, target: try self.name())
        case .soa:
            let primary = try self.name(), mailbox = try self.name()
            data = .soa(primary: primary, mailbox: mailbox, serial: try self.u32(), refresh: try self.u32(), retry: try self.u32(), expire: try self.u32(), minimum: try self.u32())
        default: data = .raw(type, try self.take(length))
        }
        guard self.offset == end else { throw DNSFormatError(message: "\(type) record data is \(length) bytes but its fields take \(self.offset - end + length)", offset: self.offset) }
        return DNSRecord(name: name, type: type, dnsClass: dnsClass, ttl: ttl, data: data)
    }
}

/// Writes big-endian numbers and compressed names.
struct DNSWriter {
    var bytes: [UInt8] = []
    /// Where each name suffix (lower-cased labels) was first written, for pointers to it.
    private var written: [[String]: Int] = [:]

    mutating func u16(_ value: UInt16) {
        self.bytes.append(UInt8(value >> 8))
        self.bytes.append(UInt8(value & 0xFF))
    }

    mutating func u32(_ value: UInt32) {
        self.u16(UInt16(value >> 16))
        self.u16(UInt16(value & 0xFFFF))
    }

    /// Writes `name`, ending in a pointer to a suffix written before when `compress`.
    mutating func name(_ name: DNSName, compress: Bool = true) {
        let lowered = name.lowercased
        for index in lowered.indices {
            let suffix = Array(lowered[index...])
            if compress, let offset = self.written[suffix] {
                self.u16(0xC000 | UInt16(offset))
                return
            }
            if self.bytes.count < 0x4000 { self.written[suffix] = self.bytes.count }
            let label = Array(name.labels[index].utf8.prefix(63))
            self.bytes.append(UInt8(label.count))
            self.bytes.append(contentsOf: label)
        }
        self.bytes.append(0)
    }

    mutating func record(_ record: DNSRecord) {
        self.name(record.name)
        self.u16(record.type.rawValue)
        self.u16(record.dnsClass)
        self.u32(record.ttl)
        let lengthAt = self.bytes.count
        self.u16(0)
        switch record.data {
        case .a(let address), .aaaa(let address): self.bytes.append(contentsOf: address)
        case .srv(let priority, let weight, let port, let target):
            self.u16(priority)
            self.u16(weight)
            self.u16(port)
            self.name(target, compress: false)   // RFC 2782: the target is never compressed
        case .soa(let primary, let mailbox, let serial, let refresh, let retry, let expire, let minimum):
            self.name(primary)
            self.name(mailbox)
            for value in [serial, refresh, retry, expire, minimum] { self.u32(value) }
        case .raw(_, let data): self.bytes.append(contentsOf: data)
        }
        let length = self.bytes.count - lengthAt - 2
        self.bytes[lengthAt] = UInt8(length >> 8)
        self.bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}
