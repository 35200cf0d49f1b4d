import CEditLine
import Foundation
import Synchronization

/// Reads the lines of `sky cli`: with libedit on a terminal (editing keys, history kept in a
/// file, Tab completion from a ``ShellCompleter``), or plainly from a pipe, so scripts can
/// feed the shell too.
///
/// libedit keeps its state in C globals, so there is one editor per process.
public final class LineEditor: Sendable {
    /// Whether standard input is a terminal (libedit) or not (plain lines).
    public let isInteractive: Bool
    /// Where history is kept between sessions; `nil` keeps none.
    public let historyFile: String?
    /// Read by libedit's completion callback, which cannot capture context.
    private static let completer = Mutex(ShellCompleter())
    /// The last line added to the history: a line repeated is not added again, as shells do.
    private let lastEntry = Mutex<String?>(nil)

    /// Creates a `LineEditor` from its parts.
    public init(historyFile: String?) {
        self.isInteractive = isatty(STDIN_FILENO) == 1
        self.historyFile = historyFile
        guard self.isInteractive else { return }
        sky_editline_setup(Self.complete)
        using_history()
        stifle_history(1000)
        if let historyFile { _ = read_history(historyFile) }
    }

    /// Replaces what Tab offers (the registry's services, hosts … change).
    public func setCompleter(_ completer: ShellCompleter) {
        Self.completer.withLock { $0 = completer }
    }

    /// The next line, or `nil` at end of input (Ctrl-D).
    public func readLine(prompt: String) -> String? {
        guard self.isInteractive else { return Swift.readLine(strippingNewline: true) }
        guard let pointer = readline(prompt) else { return nil }
        defer { free(pointer) }
        let line = String(cString: pointer)
        let entry = line.trimmingCharacters(in: .whitespaces)
        // Like a shell: no blank entries, no entry twice in a row.
        if !entry.isEmpty && self.lastEntry.withLock({ $0 }) != entry {
            add_history(entry)
            self.lastEntry.withLock { $0 = entry }
            if let historyFile { _ = write_history(historyFile) }
        }
        return line
    }

    /// libedit's completion hook: answers `[substitution, candidates…, NULL]`, allocated with
    /// malloc (libedit frees it), or NULL for none; never falls back to file names.
    private static let complete: @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = { text, start, _ in
        let word = text.map { String(cString: $0) } ?? ""
        let before = sky_editline_line().map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(start)), as: UTF8.self) } ?? ""
        let candidates = LineEditor.completer.withLock { $0.candidates(before: before, word: word) }
        // A key (`service=`) wants its value next, not a space.
        sky_editline_completion_settings(candidates.count == 1 && !candidates[0].hasSuffix("=") ? 32 : 0)
        guard !candidates.isEmpty else { return nil }
        // One match is sent twice: libedit reads the third entry even then, and takes a second
        // entry equal to the first as "exact match, append the space".
        let entries = [candidates.count == 1 ? candidates[0] : ShellCompleter.commonPrefix(candidates)] + candidates
        let array = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (entries.count + 1))!
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: entries.count + 1)
        for (index, entry) in entries.enumerated() { array[index] = strdup(entry) }
        array[entries.count] = nil
        return array
    }
}
