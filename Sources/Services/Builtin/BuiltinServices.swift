public import Logging
public import SkyLib

/// The services that ship with Skynet, for examples and tests.
public enum BuiltinServices {
    /// Every built-in service name.
    public static let names = ["uppercase", "reverse", "wordcount", "echo", "audit", "flaky", "slow"]

    /// The definition of built-in service `name`, or `nil` when there is none.
    public static func definition(named name: String, version: String = "1.0.0", logger: Logger) -> ServiceDefinition? {
        let handler: any ServiceHandler
        switch name {
        case "uppercase": handler = Uppercase()
        case "reverse": handler = Reverse()
        case "wordcount": handler = WordCount()
        case "echo": handler = Echo()
        case "audit": handler = Audit(logger: logger)
        case "flaky": handler = Flaky()
        case "slow": handler = Slow()
        default: return nil
        }
        return ServiceDefinition(name: name, version: version, handler: handler)
    }
}
