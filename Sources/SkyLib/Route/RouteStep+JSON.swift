import Foundation

extension RouteStep {
    /// The step as JSON, with defaults left out.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["service": .string(self.service)]
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
        return .object(fields)
    }
}
