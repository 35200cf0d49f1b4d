import Foundation

/// Whether a test whose machine requirement is `met` should run. Where it is not met the
/// skip is never silent: one line on standard error names the test and why. In CI (`CI` set,
/// as root on the project's machines) the test runs anyway, so a missing capability fails
/// loudly instead of turning a run green by skipping.
public func requirement(_ met: Bool, test: String, _ why: String) -> Bool {
    if met { return true }
    if let ci = ProcessInfo.processInfo.environment["CI"], !ci.isEmpty, ci != "0", ci != "false" {
        FileHandle.standardError.write(Data("RUNNING \(test) although \(why) is not met here: CI must run it (and it will fail if it cannot)\n".utf8))
        return true
    }
    FileHandle.standardError.write(Data("SKIPPED \(test): \(why)\n".utf8))
    return false
}
