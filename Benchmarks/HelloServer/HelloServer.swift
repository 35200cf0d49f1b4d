import Foundation
import Hummingbird

/// The peers for the HTTP route benchmark, on the same framework, build settings, machine and
/// load as `sky run`:
/// - `POST /routes/text` answers a constant document after reading the body: the floor, the
///   cost of HTTP alone.
/// - `POST /work/text` does the route's work in one handler, as a plain Hummingbird service
///   would: decode the body (`JSONDecoder`), upper-case the text, count its words, encode the
///   answer (`JSONEncoder`). The gap to `sky run` is the engine's cost over doing the work inline.
@main
struct HelloServer {
    struct Input: Decodable {
        var text: String
    }

    struct Output: Encodable {
        var text: String
        var words: Int
    }

    static func main() async throws {
        let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 18182
        let router = Router()
        let answer = ByteBuffer(string: #"{"text":"HELLO BIG WORLD","words":3}"#)
        router.post("routes/text") { request, _ -> Response in
            // Read the body as the engine must, then answer.
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
        }
        router.post("work/text") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let input = try JSONDecoder().decode(Input.self, from: Data(body.readableBytesView))
            let upper = input.text.uppercased()
            let output = Output(text: upper, words: upper.split(whereSeparator: \.isWhitespace).count)
            let data = try JSONEncoder().encode(output)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}
