import SkyLib
import RouteModel

/// How a `parallel:` step's branches come back together into the document, once every branch
/// has ended: `collect` sets each branch's document under its name, `merge` shallow-merges
/// each branch's changes (a key two branches set differently is recorded as a
/// `merge_conflict` error, the later branch in the file winning). Meta the branches changed
/// is kept, and so are the errors they recorded.
enum ParallelJoin {
    /// The document after the join, or why there is none (the step then fails, or records it
    /// under `errOnFail: false`).
    static func join(_ join: ParallelStep.Join, start: RouteRun.Flow, branches: [(name: String, flow: RouteRun.Flow)]) -> Result<RouteRun.Flow, SkyError> {
        guard case .object(var fields) = start.document else {
            return .failure(SkyError(.badResponse, "a parallel join needs an object document, but it is \(start.document.typeName)"))
        }
        var joined = start
        var changedBy: [String: String] = [:]
        for (name, done) in branches {
            joined.errors.append(contentsOf: done.errors)
            for (key, value) in done.meta where start.meta[key] != value { joined.meta[key] = value }
            switch join {
            case .collect:
                fields[name] = done.document
            case .merge:
                guard case .object(let output) = done.document else {
                    return .failure(SkyError(.badResponse, "branch '\(name)' ended with \(done.document.typeName); join: merge needs objects (or use join: collect)"))
                }
                for (key, value) in output.sorted(by: { $0.key < $1.key }) where start.document[key] != value {
                    if let earlier = changedBy[key], fields[key] != value {
                        joined.errors.append(StepError(
                            service: "parallel",
                            message: "branches '\(earlier)' and '\(name)' both set '\(key)'; '\(name)' (later in the file) wins",
                            code: "merge_conflict"
                        ))
                    }
                    fields[key] = value
                    changedBy[key] = name
                }
            }
        }
        joined.document = .object(fields)
        return .success(joined)
    }
}
