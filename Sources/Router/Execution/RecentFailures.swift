import Foundation
import SkyLib
import RouteModel
import Synchronization

/// The last failed requests of a router (route, step, service, error, trace id), for the
/// dashboard's "recent failures"; a small ring, so it costs nothing while all is well.
final class RecentFailures: Sendable {
    /// One failed request: when, which route, the error (naming step and service), its trace.
    struct Failure: Sendable {
        var at: Date
        var route: String
        var error: SkyError
        var traceID: String
    }

    /// How many are kept (the dashboard shows 20).
    let capacity: Int
    /// The newest last; the oldest dropped past ``capacity``.
    private let ring = Mutex<[Failure]>([])

    /// An empty list keeping the last `capacity` failures.
    init(capacity: Int = 20) {
        self.capacity = capacity
    }

    /// Keeps `failure`, dropping the oldest past ``capacity``.
    func add(_ failure: Failure) {
        self.ring.withLock { ring in
            ring.append(failure)
            if ring.count > self.capacity { ring.removeFirst(ring.count - self.capacity) }
        }
    }

    /// Newest first, as JSON for `/debug/stats`.
    var json: JSONValue {
        .array(self.ring.withLock { $0 }.reversed().map { failure in
            [
                "at": .double(failure.at.timeIntervalSince1970),
                "route": .string(failure.route),
                "step": failure.error.step.map { .int(Int64($0)) } ?? .null,
                "service": failure.error.service.map(JSONValue.string) ?? .null,
                "code": .string(failure.error.code.description),
                "message": .string(failure.error.message),
                "traceId": .string(failure.traceID),
            ]
        })
    }
}
