import Foundation
public import SkyLib

/// Where OTLP/HTTP trace export goes, from `--otlp` or the standard OpenTelemetry variables.
///
/// Precedence: the flag (a base URL: `/v1/traces` is added unless the path already ends so),
/// then `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is, as the specification says), then
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL). `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none` turn export off; `OTEL_EXPORTER_OTLP_HEADERS`
/// (`key=value,…`) adds headers; `OTEL_SERVICE_NAME` names the process.
public struct OTLPEndpoint: Sendable, Hashable {
    /// The full URL batches are posted to.
    public var url: String
    /// Extra headers for every batch (an API key, for instance).
    public var headers: [Header]

    /// One extra header.
    public struct Header: Sendable, Hashable {
        /// Its name.
        public var name: String
        /// Its value.
        public var value: String

        /// Creates a `Header` from its parts.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Creates an `OTLPEndpoint` posting to `url` with `headers`.
    public init(url: String, headers: [Header] = []) {
        self.url = url
        self.headers = headers
    }

    /// The endpoint the flag or the environment asks for; `nil` when export is off.
    /// - Throws: ``SkyError`` `.configuration` naming the flag or variable whose URL is not
    ///   `http://` or `https://` with a host.
    public static func resolve(flag: String?, environment: [String: String]) throws(SkyError) -> OTLPEndpoint? {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" || environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" {
            return nil
        }
        let url: String
        if let flag, !flag.isEmpty {
            url = try Self.traces(base: flag, from: "--otlp")
        } else if let traces = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !traces.isEmpty {
            try Self.check(traces, from: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            url = traces
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            url = try Self.traces(base: base, from: "OTEL_EXPORTER_OTLP_ENDPOINT")
        } else {
            return nil
        }
        if let proto = environment["OTEL_EXPORTER_OTLP_PROTOCOL"], !proto.isEmpty, proto != "http/protobuf" {
            throw SkyError(.configuration, "OTEL_EXPORTER_OTLP_PROTOCOL '\(proto)': sky speaks http/protobuf only")
        }
        return OTLPEndpoint(url: url, headers: Self.headers(environment["OTEL_EXPORTER_OTLP_HEADERS"] ?? ""))
    }

    /// Where OTLP/HTTP metrics go, by the same rules as the spans with the metrics variables:
    /// the flag (a base URL, or the traces URL itself: its `/v1/traces` becomes `/v1/metrics`),
    /// then `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (as it is), then `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (a base URL). `OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none` turn it off.
    /// - Throws: ``SkyError`` `.configuration` as ``resolve(flag:environment:)`` does.
    public static func resolveMetrics(flag: String?, environment: [String: String]) throws(SkyError) -> OTLPEndpoint? {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" || environment["OTEL_METRICS_EXPORTER"]?.lowercased() == "none" {
            return nil
        }
        let url: String
        if let flag, !flag.isEmpty {
            url = try Self.path(base: flag, "/v1/metrics", from: "--otlp")
        } else if let metrics = environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"], !metrics.isEmpty {
            try Self.check(metrics, from: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            url = metrics
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            url = try Self.path(base: base, "/v1/metrics", from: "OTEL_EXPORTER_OTLP_ENDPOINT")
        } else {
            return nil
        }
        return OTLPEndpoint(url: url, headers: Self.headers(environment["OTEL_EXPORTER_OTLP_HEADERS"] ?? ""))
    }

    private static func traces(base: String, from source: String) throws(SkyError) -> String {
        try Self.path(base: base, "/v1/traces", from: source)
    }

    /// `base` with the signal's path (`/v1/traces`, `/v1/metrics`) in place of whichever of
    /// the two it ends with, or added.
    private static func path(base: String, _ signal: String, from source: String) throws(SkyError) -> String {
        try Self.check(base, from: source)
        var base = base
        for known in ["/v1/traces", "/v1/metrics"] where base.hasSuffix(known) { base.removeLast(known.count) }
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + signal
    }

    private static func check(_ url: String, from source: String) throws(SkyError) {
        guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            throw SkyError(.configuration, "\(source) '\(url)' is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:4318)")
        }
    }

    /// `key=value,key2=value2`, values percent-decoded, as the specification writes them.
    static func headers(_ text: String) -> [Header] {
        text.split(separator: ",").compactMap { pair in
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
            let value = pair[pair.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { return nil }
            return Header(name: name, value: value.removingPercentEncoding ?? value)
        }
    }
}
