public import NIOCore

extension RequestEnvelope {
    /// The envelope's deadline as a monotonic `NIODeadline`, also bounded by `timeoutMilliseconds`
    /// (the `Skynet-Timeout-Ms` header), whichever is sooner; `nil` when neither is set.
    public func monotonicDeadline(timeoutMilliseconds: Int64? = nil) -> NIODeadline? {
        let candidates = [self.remainingMilliseconds, timeoutMilliseconds].compactMap { $0 }
        guard let remaining = candidates.min() else { return nil }
        return .now() + .milliseconds(remaining)
    }
}
