/// One STOMP 1.2 frame: a command, headers in order, and a body.
public struct StompFrame: Sendable, Equatable {
    /// `CONNECT`, `SEND`, `MESSAGE`, `ACK` …
    public var command: String
    /// Headers in order; when a name repeats, the first value counts (STOMP 1.2 §Repeated Header Entries).
    public var headers: [(String, String)]
    /// The body's bytes (`content-length` of them when sent).
    public var body: [UInt8]
    /// Why this frame could not be read whole, when it could not (a body or headers over the
    /// limit, a malformed header): the frame's place in the stream was found, so the ones
    /// after it still decode, and the initiator dead-letters this one with the reason.
    public var problem: String?

    /// Creates a `StompFrame` from its parts.
    public init(command: String, headers: [(String, String)] = [], body: [UInt8] = [], problem: String? = nil) {
        self.command = command
        self.headers = headers
        self.body = body
        self.problem = problem
    }

    /// The first value of header `name`.
    public subscript(header name: String) -> String? {
        self.headers.first { $0.0 == name }?.1
    }

    /// Equal when command, headers (in order), body and problem are.
    public static func == (lhs: StompFrame, rhs: StompFrame) -> Bool {
        lhs.command == rhs.command && lhs.body == rhs.body && lhs.problem == rhs.problem
            && lhs.headers.map { [$0.0, $0.1] } == rhs.headers.map { [$0.0, $0.1] }
    }
}

/// A STOMP frame that breaks the protocol or a size limit.
public struct StompProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "STOMP protocol error: \(self.reason)" }
}
