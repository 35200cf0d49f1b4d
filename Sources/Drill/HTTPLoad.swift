import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SkyLib
import Synchronization

/// Posts the route's input to `POST /routes/NAME` on a router: each request's answer is its
/// outcome. A request that could not be handed over (the connection refused: the router down)
/// is sent again under the same id once it can be; one whose connection broke after it was
/// sent is missing, with what the client saw.
struct HTTPLoad: DrillLoad {
    let source = "http"
    let ledger = DrillLedger()
    let duplicatesAllowed = false
    /// The router's `HOST:PORT`, as last found.
    let address: Locked<String>
    /// Finds a ready router again (a restarted one may listen elsewhere); `nil` when the
    /// address was given.
    let findRouter: (@Sendable () async -> String?)?
    /// The route posted to.
    let route: String
    /// The body of every request.
    let body: String
    /// Requests in flight at most.
    let concurrency: Int
    /// The drill's id, in every request's id.
    let drillID: String
    /// How long one request may take before it counts as unanswered.
    let timeout: Duration
    /// The client, its connections kept alive.
    let client: HTTPClient

    /// Every outcome is seen as its request returns: nothing to wait for after the load.
    func run(_ pace: Pace, settle: Duration) async {
        let next = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<self.concurrency {
                group.addTask {
                    while true {
                        let index = next.withLock { next in
                            defer { next += 1 }
                            return next
                        }
                        guard await pace.wait(for: index) else { return }
                        await self.send("\(self.drillID)-\(index)", until: pace.end, pace: pace)
                    }
                }
            }
        }
    }

    /// Sends one request, again while the router refuses the connection (until the load's end).
    private func send(_ id: String, until end: ContinuousClock.Instant, pace: Pace) async {
        while true {
            var request = HTTPClientRequest(url: "http://\(self.address.withLock { $0 })/routes/\(self.route)")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Skynet-Request-Id", value: id)
            request.body = .bytes(ByteBuffer(string: self.body))
            let sentAt = pace.now()
            do {
                let response = try await self.client.execute(request, timeout: .init(self.timeout))
                let body = try await response.body.collect(upTo: 1 << 20)
                self.ledger.sent(id, at: sentAt)
                if (200..<300).contains(response.status.code) {
                    self.ledger.record(.answered, for: id, at: pace.now())
                } else {
                    let code = (try? JSONParser.parse(String(buffer: body)))?["error"]?["code"]?.stringValue ?? "HTTP \(response.status.code)"
                    self.ledger.record(.failed(code: code), for: id, at: pace.now())
                }
                return
            } catch {
                if Self.neverSent(error) {
                    // Not handed over: nothing was lost. Again shortly, while the load lasts.
                    guard ContinuousClock.now + .milliseconds(100) < end else { return }
                    try? await Task.sleep(for: .milliseconds(100))
                    if let found = await self.findRouter?() { self.address.withLock { $0 = found } }
                    continue
                }
                self.ledger.sent(id, at: sentAt)
                self.ledger.record(.unanswered(reason: Self.describe(error)), for: id, at: pace.now())
                return
            }
        }
    }

    /// Whether `error` means the request never reached the router (the connection was refused
    /// or could not be made), so it may be sent again without a duplicate.
    static func neverSent(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        let text = "\(error)"
        return text.contains("connection refused") || text.contains("Connection refused") || text.contains("connectTimeout")
    }

    /// A short name for what broke.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "connection closed"
            case .deadlineExceeded, .readTimeout: return "timeout"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
