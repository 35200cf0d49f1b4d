import Foundation
import RegistryKit
import SkyLib
import RouteModel

/// The spans a router records for a sampled request: the route's (the trace's root here), one
/// per call attempt, and one for a service that reported its own time (`Server-Timing`). Each
/// is a no-op when the request is not sampled (`start` is `nil`) or nothing records spans.
struct RouteSpans: Sendable {
    /// Where spans go; `nil` records none.
    let recorder: SpanRecorder?

    /// The route's span is the trace's root span of this request (the initiator's span id).
    func recordRoute(_ route: Route, request: RequestEnvelope, start: Date?, elapsed: Duration, error: SkyError?) {
        guard let spans = self.recorder, let start else { return }
        spans.record(Span(
            traceID: request.trace.traceID, spanID: request.trace.spanID, parentID: request.trace.parentID, kind: .route,
            name: route.name, route: route.name, recorder: spans.recorder, host: spans.host,
            start: start, duration: elapsed.seconds, error: error?.message, revision: route.revision
        ))
    }

    /// A service that is not a Swift `ServiceHost` (which records its own span) can still
    /// show its time in the trace with a `Server-Timing: …;dur=MS` header; the router records
    /// that span on its behalf, under the call.
    func recordService(_ step: RouteStep, call: RequestEnvelope, start: Date?, duration: Double, instance: NodeRecord) {
        guard let spans = self.recorder, let start else { return }
        spans.record(Span(
            traceID: call.trace.traceID, spanID: Identifiers.spanID(), parentID: call.trace.spanID, kind: .service,
            name: step.service, route: call.route, recorder: instance.id, host: instance.host,
            address: instance.address, attempt: call.attempt, start: start, duration: duration
        ))
    }

    func recordCall(
        _ step: RouteStep, call: RequestEnvelope, parent: TraceContext, start: Date?, elapsed: Duration,
        instance: String?, address: String?, error: SkyError?
    ) {
        guard let spans = self.recorder, let start else { return }
        spans.record(Span(
            traceID: call.trace.traceID, spanID: call.trace.spanID, parentID: parent.spanID, kind: .call,
            name: step.service, route: call.route, recorder: spans.recorder, host: spans.host,
            instance: instance, address: address, attempt: call.attempt, start: start, duration: elapsed.seconds, error: error?.message
        ))
    }
}
