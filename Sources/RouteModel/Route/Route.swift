import SkyLib
/// A route: a named, declarative list of service calls, loaded from one YAML file.
///
/// ```yaml
/// name: text
/// timeout: 2s
/// steps:
///   - service: uppercase
///   - service: wordcount
///     merge: true
///   - service: audit
///     async: true
/// ```
public struct Route: Sendable, Hashable {
    /// Unique name; the HTTP initiator serves it at `POST /routes/NAME`.
    public var name: String
    /// What the route does, for people.
    public var description: String?
    /// Deadline for the whole route, propagated to every call.
    public var timeout: Duration?
    /// Extra initiators that feed this route (files, CSV, STOMP).
    public var sources: [RouteSource]
    /// The most requests this route takes (per router), when limited.
    public var rate: RateLimit?
    /// Idempotent consumer: requests with a key seen within the window get the first answer.
    public var dedupe: DedupePolicy?
    /// Whether HTTP requests that fail are kept in the registry for `sky failed` (body up to
    /// 256 KiB); files, CSV rows and STOMP messages that fail are always kept.
    public var keepFailed = false
    /// The steps, in order.
    public var steps: [RouteStep]
    /// The revision the router serves this route at (set when its table installs it; 0 for a
    /// route not served from a table). A request keeps the value it started with, so its trace
    /// says which revision it ran on.
    public var revision = 0
    /// The services of ``calls``, in order: worked out once, so a request checks its route's
    /// counters still fit without walking the steps.
    public private(set) var callServices: [String] = []
    /// What the router that runs this route worked out about it once (``RoutePlanSlot``); a
    /// table installing the route gives it a new slot.
    public var plan = RoutePlanSlot()

    /// Creates a `Route` from its parts; numbers every service call, nested ones too (their
    /// ``RouteStep/slot``), in file order.
    public init(name: String, description: String? = nil, timeout: Duration? = nil, sources: [RouteSource] = [], steps: [RouteStep]) {
        self.name = name
        self.description = description
        self.timeout = timeout
        self.sources = sources
        var next = 0
        self.steps = Self.numbered(steps, next: &next)
        self.callServices = self.calls.map(\.service)
    }

    private static func numbered(_ steps: [RouteStep], next: inout Int) -> [RouteStep] {
        steps.map { step in
            var step = step
            switch step.action {
            case .call:
                step.slot = next
                next += 1
            case .choice(let branches, let otherwise):
                let numbered = branches.map { ChoiceBranch(when: $0.when, steps: Self.numbered($0.steps, next: &next)) }
                step.action = .choice(numbered, otherwise: otherwise.map { Self.numbered($0, next: &next) })
            case .parallel(var parallel):
                parallel.branches = parallel.branches.map { ParallelBranch(name: $0.name, steps: Self.numbered($0.steps, next: &next)) }
                step.action = .parallel(parallel)
            }
            return step
        }
    }

    /// Every service call of the route, nested ones too, in file order (by ``RouteStep/slot``).
    public var calls: [RouteStep] {
        func walk(_ steps: [RouteStep]) -> [RouteStep] {
            steps.flatMap { step -> [RouteStep] in
                switch step.action {
                case .call: [step]
                case .choice(let branches, let otherwise): branches.flatMap { walk($0.steps) } + walk(otherwise ?? [])
                case .parallel(let parallel): parallel.branches.flatMap { walk($0.steps) }
                }
            }
        }
        return walk(self.steps)
    }
}

/// What a step does: call a service, choose a branch, or run branches side by side.
public enum StepAction: Sendable, Hashable {
    /// Call ``RouteStep/service`` (the original Skynet's only kind of step).
    case call
    /// `choice:`: the steps of the first branch whose condition holds, else `otherwise`, else
    /// nothing.
    case choice([ChoiceBranch], otherwise: [RouteStep]?)
    /// `parallel:`: every branch on its own copy of the document, at once, then a join.
    case parallel(ParallelStep)
}

/// One `when` branch of a `choice:`.
public struct ChoiceBranch: Sendable, Hashable {
    /// When the branch runs.
    public var when: Condition
    /// Its steps.
    public var steps: [RouteStep]

    /// Creates a `ChoiceBranch` from its parts.
    public init(when: Condition, steps: [RouteStep]) {
        self.when = when
        self.steps = steps
    }
}

/// A `parallel:` step: named branches and how their outputs join.
public struct ParallelStep: Sendable, Hashable {
    /// How branch outputs become the document.
    public enum Join: String, Sendable, Hashable, CaseIterable {
        /// Each branch's changes (keys whose value differs from the document's before the step)
        /// are merged into the document, branches in file order; when two branches change one
        /// key to different values, the later branch in the file wins and the conflict is
        /// recorded in the route's errors (code `merge_conflict`).
        case merge
        /// Each branch's output goes into the document under the branch's name.
        case collect
    }

    /// How outputs join.
    public var join: Join
    /// The branches, in file order.
    public var branches: [ParallelBranch]

    /// Creates a `ParallelStep` from its parts.
    public init(join: Join, branches: [ParallelBranch]) {
        self.join = join
        self.branches = branches
    }
}

/// One named branch of a `parallel:` step.
public struct ParallelBranch: Sendable, Hashable {
    /// Its name: the key of its output under `join: collect`, and in messages.
    public var name: String
    /// Its steps.
    public var steps: [RouteStep]

    /// Creates a `ParallelBranch` from its parts.
    public init(name: String, steps: [RouteStep]) {
        self.name = name
        self.steps = steps
    }
}

/// One step of a route: a call to a service (or a `choice:` or `parallel:` of steps).
public struct RouteStep: Sendable, Hashable {
    /// The service to call (`choice` or `parallel` for those steps).
    public var service: String
    /// What the step does; a service call unless it is a `choice:` or `parallel:`.
    public var action: StepAction = .call
    /// The step runs only when this holds for the document; skipped otherwise.
    public var when: Condition?
    /// This call's number among the route's calls (nested ones too), set by ``Route``; its
    /// counters and histograms are found by it.
    public var slot: Int = 0
    /// Version selector: exact (`1.2.0`), wildcard (`1.*`) or `nil` for any.
    public var version: String?
    /// Out-of-band: fired with its own copy of the document, never awaited.
    public var isAsync: Bool
    /// Shallow-merge an object output into the document instead of replacing it.
    public var merge: Bool
    /// When `false`, a final failure is recorded in `errors` and the route goes on.
    public var errOnFail: Bool
    /// How often and how patiently to retry retryable failures.
    public var retry: RetryPolicy
    /// Deadline of each attempt of this step (bounded by the route's).
    public var timeout: Duration?
    /// The service's circuit breaker, when the step sets one (off by default).
    public var breaker: BreakerPolicy?
    /// The most calls this step makes (per router), when limited.
    public var rate: RateLimit?
    /// Line of the step in its route file, for messages.
    public var line: Int?

    /// Creates a `RouteStep` from its parts.
    public init(
        service: String,
        version: String? = nil,
        isAsync: Bool = false,
        merge: Bool = false,
        errOnFail: Bool = true,
        retry: RetryPolicy = .none,
        timeout: Duration? = nil,
        line: Int? = nil
    ) {
        self.service = service
        self.version = version
        self.isAsync = isAsync
        self.merge = merge
        self.errOnFail = errOnFail
        self.retry = retry
        self.timeout = timeout
        self.line = line
    }
}

/// `dedupe: { key: order.id, for: 24h }`: the first request with a key runs; later ones
/// with the same key within the window get its answer without running the steps again.
public struct DedupePolicy: Sendable, Hashable {
    /// Where the key is in the request's document.
    public var key: DocumentPath
    /// How long an answer is kept for duplicates.
    public var window: Duration

    /// Creates a `DedupePolicy` from its parts.
    public init(key: DocumentPath, window: Duration = .seconds(86_400)) {
        self.key = key
        self.window = window
    }
}

/// A rate (`rate: 100/s`, or `rate: { limit: 200, per: 1s, burst: 50 }`): at most `limit`
/// per `per` on average, with up to `burst` at once (`limit` unless given).
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Requests per period.
    public var limit: Int
    /// The period.
    public var per: Duration
    /// How many may go at once after a quiet spell.
    public var burst: Int

    /// Creates a `RateLimit` from its parts; `burst` defaults to `limit`.
    public init(limit: Int, per: Duration = .seconds(1), burst: Int? = nil) {
        self.limit = limit
        self.per = per
        self.burst = burst ?? limit
    }

    /// The time between requests at the steady rate.
    public var interval: Duration { self.per / self.limit }

    public var description: String { "\(self.limit)/\(DurationParser.format(self.per)) (burst \(self.burst))" }
}

/// A circuit breaker's settings (`breaker: { failures: 5, coolDown: 10s }`): after so many
/// failed calls in a row, calls to the service fail fast for the cool-down, then one probe
/// decides.
public struct BreakerPolicy: Sendable, Hashable {
    /// Failed calls in a row that open the circuit.
    public var failures: Int
    /// How long it stays open before a probe.
    public var coolDown: Duration

    /// Creates a `BreakerPolicy` from its parts.
    public init(failures: Int = 5, coolDown: Duration = .seconds(10)) {
        self.failures = failures
        self.coolDown = coolDown
    }
}

/// Retry policy of a step: exponential backoff with jitter, capped.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first included (1 means no retry).
    public var attempts: Int
    /// Delay before the first retry; doubled for each further one.
    public var backoff: Duration
    /// The most any one delay may be.
    public var max: Duration

    /// Creates a `RetryPolicy` from its parts.
    public init(attempts: Int, backoff: Duration = .milliseconds(20), max: Duration = .seconds(1)) {
        self.attempts = attempts
        self.backoff = backoff
        self.max = max
    }

    /// One attempt, no retry.
    public static let none = RetryPolicy(attempts: 1)

    /// The delay before attempt `attempt + 1`, with "equal jitter": half fixed, half random,
    /// so retries of many requests spread out instead of arriving together.
    /// - Parameters:
    ///   - attempt: the attempt that just failed (1 for the first).
    ///   - jitter: the random half's share, 0…1 (a route test's virtual clock gives 1).
    public func delay(afterAttempt attempt: Int, jitter: Double = Double.random(in: 0...1)) -> Duration {
        let exponent = Swift.min(attempt - 1, 30)
        let base = Swift.min(self.backoff * (1 << exponent), self.max)
        let half = base / 2
        return half + half * jitter
    }
}

/// An extra initiator declared under a route's `from:`.
public enum RouteSource: Sendable, Hashable {
    /// Files dropped in a folder.
    case files(FileSource)
    /// Rows of CSV files dropped in a folder.
    case csv(CSVSource)
    /// Messages on a STOMP destination.
    case stomp(StompSource)
}

extension RouteSource: CustomStringConvertible {
    /// How `sky run`'s summary and the dashboard name it: `files drop/text/*.json`,
    /// `csv drop/people/*.csv`, `stomp /queue/orders`.
    public var description: String {
        switch self {
        case .files(let files): "files \(files.dir)/\(files.pattern)"
        case .csv(let csv): "csv \(csv.dir)/\(csv.pattern)"
        case .stomp(let stomp): "stomp \(stomp.destination)"
        }
    }
}

/// `order: { key: FIELD }, onFailure: hold | continue` on a source: inputs with the same key run
/// one at a time, in arrival order; different keys run side by side.
public struct OrderPolicy: Sendable, Hashable {
    /// What a failed input does to its key's lane.
    public enum OnFailure: String, Sendable, Hashable, CaseIterable {
        /// The lane waits until the failed input is redriven (and succeeds) or dropped
        /// (`sky failed redrive|drop`); later inputs with its key wait behind it.
        case hold
        /// The failure is recorded (`sky failed`) and the lane goes on with the next input.
        case `continue`
    }

    /// The key: a field of the JSON input (a dotted path), a CSV column, or a STOMP header.
    public var key: String
    /// What a failed input does to its lane; `continue` unless the route says `hold`.
    public var onFailure: OnFailure

    /// Creates an `OrderPolicy` from its parts.
    public init(key: String, onFailure: OnFailure = .continue) {
        self.key = key
        self.onFailure = onFailure
    }
}

/// `from: - files: {dir, pattern, concurrency, format}`.
public struct FileSource: Sendable, Hashable {
    /// The folder watched (relative to the working directory).
    public var dir: String
    /// Which file names are taken (`*` and `?` globs).
    public var pattern: String
    /// How many files are worked on at once.
    public var concurrency: Int
    /// `json` (default), `text` or `base64`: how a file becomes the payload.
    public var format: String
    /// Ordered lanes by a field of the file's JSON, when declared.
    public var order: OrderPolicy?

    /// Creates a `FileSource` from its parts.
    public init(dir: String, pattern: String = "*", concurrency: Int = 8, format: String = "json") {
        self.dir = dir
        self.pattern = pattern
        self.concurrency = concurrency
        self.format = format
    }
}

/// `from: - csv: {dir, pattern, header, delimiter, concurrency}`.
public struct CSVSource: Sendable, Hashable {
    /// The folder watched (relative to the working directory).
    public var dir: String
    /// Which file names are taken (`*.csv` by default).
    public var pattern: String
    /// Whether the first row names the columns (each row becomes an object); else each row is an array.
    public var header: Bool
    /// The field separator (`,` by default).
    public var delimiter: Character
    /// How many rows of one file are in flight at once.
    public var concurrency: Int
    /// How the file's bytes are read: `utf-8` (the default: a row with bytes that are not
    /// UTF-8 is rejected, kept as it was) or `latin1` (ISO-8859-1, every byte a character).
    public var encoding: String = "utf-8"
    /// Ordered lanes by a column, when declared.
    public var order: OrderPolicy?

    /// Encodings a route may declare.
    public static let encodings = ["utf-8", "latin1"]

    /// Creates a `CSVSource` from its parts.
    public init(dir: String, pattern: String = "*.csv", header: Bool = true, delimiter: Character = ",", concurrency: Int = 8) {
        self.dir = dir
        self.pattern = pattern
        self.header = header
        self.delimiter = delimiter
        self.concurrency = concurrency
    }
}

/// A STOMP subscription's acknowledgement mode (`ack:` of a stomp source).
public enum StompAck: String, Sendable, Hashable, CaseIterable {
    /// Each message acknowledged once its answer (or dead letter) is with the broker:
    /// at-least-once, nothing lost across a stop or crash.
    case clientIndividual = "client-individual"
    /// The broker counts a message delivered as it sends it: at-most-once. Messages in hand when
    /// the node stops or crashes are lost, and a failure without `deadLetter` is dropped.
    case auto
}

/// `from: - stomp: {url, destination, replyTo, deadLetter, prefetch, ack}`.
public struct StompSource: Sendable, Hashable {
    /// The broker, `stomp://[user:pass@]host:port`; when `nil`, `SKYNET_STOMP_URL`, else `stomp://127.0.0.1:61613`.
    public var url: String?
    /// The queue read from.
    public var destination: String
    /// Where answers go, when anywhere (a message's own `reply-to` header wins).
    public var replyTo: String?
    /// Where a message that failed for good is sent with its error; when `nil` it is NACKed and
    /// the broker decides.
    public var deadLetter: String?
    /// How many messages are in the route at once (also asked of the broker as its prefetch).
    public var prefetch: Int
    /// Ordered lanes by a header, when declared.
    public var order: OrderPolicy?
    /// When a message is acknowledged: after its answer is with the broker (the default), or
    /// on delivery (`auto`: at-most-once, faster, and lossy: what is in hand when the node stops
    /// or crashes is gone).
    public var ack: StompAck = .clientIndividual

    /// Creates a `StompSource` from its parts.
    public init(url: String? = nil, destination: String, replyTo: String? = nil, deadLetter: String? = nil, prefetch: Int = 16) {
        self.url = url
        self.destination = destination
        self.replyTo = replyTo
        self.deadLetter = deadLetter
        self.prefetch = prefetch
    }
}
