import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import SkyLib

/// The limit for the cross-process chain benchmark: the same three service processes called
/// one after another over pooled keep-alive HTTP, with no engine in between — no registry, no
/// balancing, no retries, no deadlines, no counters. `sky router` doing the same chain is
/// measured against this.
///
///     plain-hops PORT HOST:PORT HOST:PORT HOST:PORT
@main
struct PlainHops {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let port = Int(arguments.first ?? "") ?? 18183
        let hops = Array(arguments.dropFirst())
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)

        let router = Router()
        router.post("chain") { request, _ -> Response in
            var document = try JSONParser.parse(Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            for hop in hops {
                var call = HTTPClientRequest(url: "http://\(hop)/call")
                call.method = .POST
                call.headers.add(name: "Content-Type", value: "application/json")
                call.body = .bytes(JSONWriter.buffer(.object(["id": "bench", "route": "chain", "payload": document])))
                let response = try await client.execute(call, timeout: .seconds(30))
                let body = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok, case .object(let fields) = try JSONParser.parse(Array(buffer: body)), let payload = fields["payload"] else {
                    return Response(status: .badGateway)
                }
                document = payload
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: JSONWriter.buffer(document)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
        try await client.shutdown()
    }
}
