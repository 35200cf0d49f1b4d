public import SkyLib
import Foundation

extension RouteStep {
    /// The step for people, in one line: `uppercase`, `audit (async)`, `choice(review | approve)`,
    /// `parallel(price: price, stock: stock)`.
    public var outline: String {
        let body: String
        switch self.action {
        case .call:
            body = self.isAsync ? "\(self.service) (async)" : self.service
        case .choice(let branches, let otherwise):
            let parts = branches.map { $0.steps.map(\.outline).joined(separator: " → ") } + (otherwise.map { ["otherwise: " + $0.map(\.outline).joined(separator: " → ")] } ?? [])
            body = "choice(\(parts.joined(separator: " | ")))"
        case .parallel(let parallel):
            body = "parallel(\(parallel.branches.map { "\($0.name): " + $0.steps.map(\.outline).joined(separator: " → ") }.joined(separator: ", ")))"
        }
        return self.when == nil ? body : body + " when \(self.when!.description)"
    }

    /// The step as JSON, with defaults left out.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [:]
        switch self.action {
        case .call:
            fields["service"] = .string(self.service)
        case .choice(let branches, let otherwise):
            var items: [JSONValue] = branches.map { ["when": .string($0.when.description), "steps": .array($0.steps.map(\.json))] }
            if let otherwise { items.append(["otherwise": .array(otherwise.map(\.json))]) }
            fields["choice"] = .array(items)
        case .parallel(let parallel):
            fields["parallel"] = [
                "join": .string(parallel.join.rawValue),
                "branches": .object(Dictionary(uniqueKeysWithValues: parallel.branches.map { ($0.name, JSONValue.array($0.steps.map(\.json))) })),
            ]
        }
        if let when { fields["when"] = .string(when.description) }
        if let version { fields["version"] = .string(version) }
        if self.isAsync { fields["async"] = true }
        if self.merge { fields["merge"] = true }
        if !self.errOnFail { fields["errOnFail"] = false }
        if self.retry.attempts > 1 {
            fields["retry"] = [
                "attempts": .int(Int64(self.retry.attempts)),
                "backoff": .string(DurationParser.format(self.retry.backoff)),
                "max": .string(DurationParser.format(self.retry.max)),
            ]
        }
        if let timeout { fields["timeout"] = .string(DurationParser.format(timeout)) }
        if let rate { fields["rate"] = .string(rate.description) }
        if let breaker {
            fields["breaker"] = ["failures": .int(Int64(breaker.failures)), "coolDown": .string(DurationParser.format(breaker.coolDown))]
        }
        return .object(fields)
    }
}
