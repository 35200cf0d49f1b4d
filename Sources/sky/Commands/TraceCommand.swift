import ArgumentParser
import Foundation
import SkyLib
import RegistryKit
import NodeRuntime

/// `sky trace ID`: one request's journey, as a tree of the spans its processes recorded.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print one request's trace: every route, call and service span, with instances and durations.",
        discussion: """
            The trace id is in every HTTP answer (Skynet-Trace-Id) and in the logs. Traces are \
            sampled: every request while traffic is light, at most SKYNET_TRACE_PER_SECOND new \
            traces a second (default 100) per initiator under load; send Skynet-Trace: 1 to force one.
            """
    )

    @Argument(help: "The trace id.")
    var traceID: String

    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).")
    var registry: String?

    @Option(help: "Seconds to wait for the spans to arrive (processes write them in batches).")
    var wait: Double = 2

    @Flag(help: "Print the spans as JSON instead of a tree.")
    var json = false

    func run() async throws {
        let registry = try await RegistryAddress.resolve(flag: self.registry).open()
        let deadline = ContinuousClock.now + .milliseconds(Int64(self.wait * 1000))
        var spans = try await registry.spans(traceID: self.traceID)
        // Spans arrive batch by batch; wait until the set stops growing, within the deadline.
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let again = try await registry.spans(traceID: self.traceID)
            if !spans.isEmpty, again.count == spans.count { break }
            spans = again
        }
        if self.json {
            Output.line(JSONWriter.string(.array(spans.map(\.json))))
            return
        }
        guard !spans.isEmpty else {
            throw ValidationError("no spans for trace \(self.traceID) in \(registry.displayName) (not sampled, not flushed yet, or pruned)")
        }
        Output.line(TraceTree.render(spans), terminator: "")
    }
}
