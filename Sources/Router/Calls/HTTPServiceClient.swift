import AsyncHTTPClient
import Foundation
public import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import ServiceLifecycle
public import SkyLib
import RouteModel
public import RegistryKit
public import TLS

/// Calls services over the wire protocol (`POST /call`, HTTP/1.1 + JSON) through pooled
/// keep-alive connections.
///
/// One `HTTPServiceClient` serves a whole process: its connection pool keeps up to
/// `maxConnectionsPerInstance` warm connections to each instance. It is a `Service` so the
/// `ServiceGroup` shuts the pool down after everything that uses it has stopped.
public final class HTTPServiceClient: ServiceClient, Service, Sendable {
    /// AsyncHTTPClient with a keep-alive pool per instance: a call reuses a connection instead of
    /// paying a TCP (and TLS) handshake.
    private let client: HTTPClient
    /// The router's logger.
    private let logger: Logger
    /// Largest response body accepted from a service.
    public let maxResponseBytes: Int
    /// Shared secret sent as `Authorization: Bearer …` when set.
    private let token: String?

    /// Creates a `HTTPServiceClient` from its parts.
    /// - Parameter eventLoopGroup: where the pooled connections run (the node's loops).
    public init(
        eventLoopGroup: any EventLoopGroup,
        maxConnectionsPerInstance: Int = 64,
        maxResponseBytes: Int = 16 * 1024 * 1024,
        token: String? = nil,
        tls: NodeTLS? = nil,
        logger: Logger
    ) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerInstance
        )
        configuration.timeout = .init(connect: .seconds(1))
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        configuration.httpVersion = .http1Only
        // Used for instances whose address says https: verified against --tls-ca (or the
        // system store), with this process's client certificate for mutual TLS.
        configuration.tlsConfiguration = tls?.client
        self.client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
        self.maxResponseBytes = maxResponseBytes
        self.token = token
        self.logger = logger
    }

    /// `POST /call` to the instance with the envelope, under `deadline` (30 s when none),
    /// which also goes to the service as `Skynet-Timeout-Ms`; the response body is read up to
    /// ``maxResponseBytes``. Failures are classified so the router knows what to retry:
    /// unreachable and timed out are retryable (another instance may answer), an answer that is
    /// not a response or is too large is not.
    public func call(_ request: RequestEnvelope, instance: NodeRecord, deadline: NIODeadline?) async throws(SkyError) -> ServiceResponse {
        var http = HTTPClientRequest(url: AdvertisedAddress.url(instance.address, path: "/call"))
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "Skynet-Request-Id", value: request.id)
        // Each id spelled once, for the headers and the envelope's JSON alike.
        let traceID = request.trace.traceID, spanID = request.trace.spanID
        let traceparent = TraceContext.traceparent(traceID: traceID, spanID: spanID, sampled: request.trace.sampled)
        http.headers.add(name: "Skynet-Trace-Id", value: traceID)
        // W3C trace context beside the envelope's own fields, so a service in any language
        // (and any proxy between) can join the trace with its usual library.
        if let traceparent { http.headers.add(name: TraceContext.W3CHeader.traceparent, value: traceparent) }
        if let tracestate = request.trace.state { http.headers.add(name: TraceContext.W3CHeader.tracestate, value: tracestate) }
        if let token { http.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let effectiveDeadline = deadline ?? .now() + .seconds(30)
        let remaining = effectiveDeadline - .now()
        http.headers.add(name: "Skynet-Timeout-Ms", value: String(max(0, remaining.nanoseconds / 1_000_000)))
        var envelope: [UInt8] = []
        envelope.reserveCapacity(512)
        request.appendWireJSON(to: &envelope, traceID: traceID, spanID: spanID)
        http.body = .bytes(ByteBuffer(bytes: envelope))

        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await self.client.execute(http, deadline: effectiveDeadline, logger: self.logger)
            body = try await response.body.collect(upTo: self.maxResponseBytes)
        } catch is NIOTooManyBytesError {
            // The service answered, too much: its fault, not the network's (another instance
            // would answer the same document the same way).
            throw SkyError(
                .badResponse, "\(instance.address) answered with a body over the limit of \(self.maxResponseBytes) bytes", retryable: false, service: instance.service
            )
        } catch {
            throw Self.classify(error, instance: instance)
        }
        let json: JSONValue
        do {
            json = try body.withUnsafeReadableBytes { bytes throws(JSONParseError) in try JSONParser.parse(bytes) }
        } catch {
            throw SkyError(
                .badResponse,
                "\(instance.address) answered HTTP \(response.status.code) with a body that is not JSON (\(error))",
                service: instance.service
            )
        }
        guard response.status == .ok else {
            if var error = SkyError(json: json) {
                // 5xx is retryable unless the service said otherwise; 4xx only when it said so.
                if response.status.code >= 500, json["error"]?["retryable"] == nil { error.isRetryable = true }
                error.service = instance.service
                throw error
            }
            throw SkyError(
                .serviceError,
                "\(instance.address) answered HTTP \(response.status.code)",
                retryable: response.status.code >= 500,
                service: instance.service
            )
        }
        var answer = try ServiceResponse(json: json)
        answer.serverDuration = response.headers.first(name: "Server-Timing").flatMap(Self.duration(fromServerTiming:))
        return answer
    }

    /// The first `dur=MS` of a `Server-Timing` header, in seconds.
    static func duration(fromServerTiming header: String) -> Double? {
        for parameter in header.split(whereSeparator: { $0 == ";" || $0 == "," }) {
            let part = parameter.trimmingCharacters(in: .whitespaces)
            if part.hasPrefix("dur="), let milliseconds = Double(part.dropFirst(4)) { return milliseconds / 1000 }
        }
        return nil
    }

    /// Maps a transport error to a ``SkyError``: timeouts and connection failures are retryable.
    static func classify(_ error: any Error, instance: NodeRecord) -> SkyError {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return SkyError(.deadlineExceeded, "\(instance.address) did not answer in time", retryable: true, service: instance.service)
            case .connectTimeout, .remoteConnectionClosed, .getConnectionFromPoolTimeout:
                return SkyError(.connectionFailed, "\(instance.address): \(error)", retryable: true, service: instance.service)
            default:
                break
            }
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            // Left out like an unreachable instance: another one is tried.
            return SkyError(
                .connectionFailed, "TLS with \(instance.service) at \(instance.address) (node \(Identifiers.short(instance.id))) failed: \(error)",
                retryable: true, service: instance.service
            )
        }
        if error is CancellationError {
            return SkyError(.deadlineExceeded, "call to \(instance.address) was cancelled", retryable: false, service: instance.service)
        }
        return SkyError(.connectionFailed, "cannot reach \(instance.address): \(error)", retryable: true, service: instance.service)
    }

    /// Waits for graceful shutdown, then closes every pooled connection.
    public func run() async throws {
        try? await gracefulShutdown()
        try await self.client.shutdown()
    }

    /// Closes the pool when the client is used outside a `ServiceGroup`.
    public func shutdown() async throws {
        try await self.client.shutdown()
    }
}
