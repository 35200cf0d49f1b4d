import Foundation
import Hummingbird

/// The peer for the HTTP route-overhead benchmark: a bare Hummingbird server that answers a
/// posted JSON body with a constant JSON document, with no engine in between. Same framework,
/// same build settings, same machine, same load: the gap to `sky run` is the engine's cost.
@main
struct HelloServer {
    static func main() async throws {
        let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 18182
        let router = Router()
        let answer = ByteBuffer(string: #"{"text":"HELLO BIG WORLD","words":3}"#)
        router.post("routes/text") { request, _ -> Response in
            // Read the body as the engine must, then answer.
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}
