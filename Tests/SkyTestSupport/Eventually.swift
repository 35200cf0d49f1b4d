/// Polls `condition` until it holds or `seconds` pass: a deadline, not a sleep. Tests use it
/// wherever they wait for something another task or process does.
public func eventually(within seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
