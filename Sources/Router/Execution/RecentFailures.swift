import Foundation
import SkyLib
import Synchronization

/// The last failed requests of a router (route, step, service, error, trace id), for the
/// dashboard's "recent failures"; a small ring, so it costs nothing while all is well.
final class RecentFailures: Sendable {
    struct Failure: Sendable {
        var at: Date
        var route: String
        var error: SkyError
        var traceID: String
    }

    let capacity: Int
    private let ring = Mutex<[Failure]>([])

    init(capacity: Int = 20) {
        self.capacity = capacity
    }

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
