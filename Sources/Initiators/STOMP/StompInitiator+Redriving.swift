import Foundation
import NIOCore
import SkyLib
public import RouteModel

extension StompInitiator: Redriving {
    /// Sends each message again to the source's destination, with the headers its sender gave it
    /// and its failed item's id (``failedIDHeader``), on a connection of its own: every SEND asks
    /// a RECEIPT, and a message counts as put back only once the broker confirmed it. A message
    /// whose body was not kept (over the limit, or unreadable) cannot be; it is still in the
    /// dead-letter queue.
    public func redrive(_ items: [Redrive]) async -> [String: String] {
        let source = self.configuration.source
        var refused: [String: String] = [:]
        var frames: [(id: String, frame: StompFrame)] = []
        for item in items {
            guard let body = item.input else {
                refused[item.id] = "its body (\(item.inputBytes) bytes) was not kept; it is in \(source.deadLetter ?? "the dead-letter queue")"
                continue
            }
            let original = (item.details["headers"].flatMap { try? JSONParser.parse($0) }?.objectValue ?? [:]).compactMapValues(\.stringValue)
            var headers = [("destination", source.destination), (Self.failedIDHeader, item.id), ("receipt", "redrive-\(item.id)")]
            headers += original.filter { $0.key != Self.failedIDHeader && $0.key != "receipt" }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            if original["persistent"] == nil { headers.append(("persistent", "true")) }
            frames.append((item.id, StompFrame(command: "SEND", headers: headers, body: Array(body.utf8))))
        }
        guard !frames.isEmpty else { return refused }
        do {
            let endpoint = try Endpoint(url: source.url, environment: self.configuration.environment)
            let channel = try await self.connect(endpoint)
            let confirmed = try await channel.executeThenClose { inbound, outbound -> Set<String> in
                var replies = inbound.makeAsyncIterator()
                try await outbound.write(StompFrame(command: "CONNECT", headers: [
                    ("accept-version", "1.2"), ("host", self.configuration.virtualHost), ("login", endpoint.login), ("passcode", endpoint.passcode),
                    ("heart-beat", "0,0"),
                ]))
                guard let connected = try await replies.next(), connected.command == "CONNECTED" else {
                    throw StompProtocolError(reason: "the broker refused the connection for the redrive")
                }
                try await outbound.write(contentsOf: frames.map(\.frame))
                var confirmed: Set<String> = []
                while confirmed.count < frames.count, let reply = try await replies.next() {
                    if reply.command == "ERROR" { throw StompProtocolError(reason: "broker error: \(reply[header: "message"] ?? "")") }
                    if reply.command == "RECEIPT", let receipt = reply[header: "receipt-id"], receipt.hasPrefix("redrive-") {
                        confirmed.insert(String(receipt.dropFirst("redrive-".count)))
                    }
                }
                try await outbound.write(StompFrame(command: "DISCONNECT"))
                return confirmed
            }
            for (id, _) in frames where !confirmed.contains(id) { refused[id] = "the broker did not confirm the message" }
        } catch {
            for (id, _) in frames { refused[id] = "cannot send it to \(source.destination): \(error)" }
        }
        return refused
    }
}
