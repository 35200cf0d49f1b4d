import ArgumentParser
import Foundation
import SkyLib
import RouteModel
import RegistryKit
import NodeRuntime

/// `sky trace ID`: one request's journey, as a tree of the spans its processes recorded.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print one request's trace (every route, call and service span), or list the latest traced requests.",
        discussion: """
            The trace id is in every HTTP answer (Skynet-Trace-Id) and in the logs. Traces are \
            sampled: every request while traffic is light, at most SKYNET_TRACE_PER_SECOND new \
            traces a second (default 100) per initiator under load; send Skynet-Trace: 1 to force one.
            """
    )

    /// Any id a person has: the `Skynet-Trace-Id` header, a log line's `trace`, or a row of the
    /// listing.
    @Argument(help: "The trace id; without one, the latest traced requests, newest first.")
    var traceID: String?

    /// 20: a screen's worth; the registry keeps the newest spans up to a bound, and `--last`
    /// reaches further back within it.
    @Option(help: "Without a trace id: how many of the latest requests to list.")
    var last: Int = 20

    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).")
    var registry: String?

    /// Two seconds: processes write spans in batches once a second, so a trace asked for right
    /// after its request may still be on its way.
    @Option(help: "Seconds to wait for the spans to arrive (processes write them in batches).")
    var wait: Double = 2

    /// For scripts and for tools that draw traces: the spans as stored, with their ids and parents.
    @Flag(help: "Print the spans as JSON instead of a tree.")
    var json = false

    /// Draws one trace as a tree (route → calls → services, with offsets and durations, across
    /// processes), waiting up to `--wait` for its spans to land; without an id, lists the latest
    /// traced requests.
    func run() async throws {
        let registry = try await RegistryAddress.resolve(flag: self.registry).open()
        guard let traceID = self.traceID else {
            try await self.listLatest(registry)
            return
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(self.wait * 1000))
        var spans = try await registry.spans(traceID: traceID)
        // Spans arrive batch by batch; wait until the set stops growing, within the deadline.
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let again = try await registry.spans(traceID: traceID)
            if !spans.isEmpty, again.count == spans.count { break }
            spans = again
        }
        if self.json {
            Output.line(JSONWriter.string(.array(spans.map(\.json))))
            return
        }
        guard !spans.isEmpty else {
            throw ValidationError("no spans for trace \(traceID) in \(registry.displayName) (not sampled, not flushed yet, or pruned)")
        }
        Output.line(TraceTree.render(spans), terminator: "")
    }

    /// The latest traced requests, newest first: one line each (or JSON), with the id to
    /// pass back to `sky trace`.
    private func listLatest(_ registry: any Registry) async throws {
        let roots = try await registry.latestRouteSpans(limit: max(1, self.last))
        if self.json {
            Output.line(JSONWriter.string(.array(roots.map(\.json))))
            return
        }
        guard !roots.isEmpty else {
            Output.line("no traced requests in \(registry.displayName) yet")
            return
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let rows = roots.map { span in
            [span.traceID, formatter.string(from: span.start), span.route, String(format: "%.1fms", span.duration * 1000), span.error ?? "ok"]
        }
        Output.line(Table.render(header: ["TRACE", "STARTED", "ROUTE", "DURATION", "RESULT"], rows: rows))
    }
}
