import Foundation
import Logging
import NIOPosix
import SkyLib
import RouteModel

/// Finds complete files in a drop folder and queues their names: inotify close-write and
/// moved-to events as they happen, plus a periodic scan as fallback (for missed events, an
/// overflowed event queue, or file systems without inotify) that takes a file only once its
/// size and time have not changed for a whole scan interval and it has been quiet for 5 s
/// (1 s without inotify, where the scan is all there is).
struct FolderWatcher: Sendable {
    let folder: DropFolder
    let pattern: String
    let scanInterval: Duration
    let logger: Logger
    let counters: Counters
    /// Where scans run (the node's pool).
    let threadPool: NIOThreadPool
    /// Counter bumped once per episode of failed scans.
    let scanErrors: String

    /// Watches until `shouldStop` says so, queuing names into `queue`.
    func run(into queue: WorkQueue<DropItem>, shouldStop: @escaping @Sendable () -> Bool) async {
        // inotify blocks a thread while it waits: give it its own.
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        defer { thread.shutdownGracefully { _ in } }
        let watcher: InotifyWatcher?
        do {
            watcher = try InotifyWatcher(directory: self.folder.root)
        } catch {
            self.logger.warning("no inotify; polling the folder instead", metadata: ["error": "\(error)"])
            watcher = nil
        }
        var previous: [String: DropFolder.Entry] = [:]
        var nextScan = ContinuousClock.now
        var firstScan = true
        var scanFailing = false
        while !shouldStop() && !Task.isCancelled {
            var overflowed = false
            if let watcher {
                // runIfActive throws only once the thread is shut down, at the end of this loop.
                let result = (try? await thread.runIfActive { watcher.wait(timeoutMilliseconds: 250) }) ?? (names: [], overflowed: false)
                overflowed = result.overflowed
                for name in result.names where !DropFolder.isIgnored(name) && fnmatch(self.pattern, name, 0) == 0 {
                    queue.enqueue(.fresh(name))
                }
            } else {
                try? await Task.sleep(for: .milliseconds(250))  // cancelled: the loop ends
            }
            guard overflowed || ContinuousClock.now >= nextScan else { continue }
            nextScan = ContinuousClock.now + self.scanInterval
            let folder = self.folder
            let pattern = self.pattern
            let entries: [DropFolder.Entry]
            do {
                // Names already queued are not looked at again: a large backlog would be
                // listed and stat'ed in full every second while it drains.
                entries = try await self.threadPool.runIfActive { try folder.entries(pattern: pattern, skipping: { queue.isQueued(.fresh($0)) }) }
                if scanFailing {
                    scanFailing = false
                    self.logger.notice("the folder can be listed again")
                }
            } catch {
                // Cancelled (stopping): nothing to report.
                if Task.isCancelled { break }
                // Logged once per episode and counted; files wait (nothing is taken or lost)
                // until the folder can be listed again.
                if !scanFailing {
                    scanFailing = true
                    self.counters.add(self.scanErrors)
                    self.logger.error("cannot scan the folder; files wait until it can be listed", metadata: ["error": "\(error)"])
                }
                continue
            }
            // With inotify, close-write is the signal; the scan is only a safety net for missed
            // events, so it waits longer before trusting a quiet file (a writer may pause).
            let settled = Date().timeIntervalSince1970 - (watcher == nil ? 1 : 5)
            var current: [String: DropFolder.Entry] = [:]
            for entry in entries {
                guard entry.isFile else {
                    // Queued at once: taking it refuses it (one log line, counted once while it
                    // stays), which is all that ever happens to it.
                    queue.enqueue(.fresh(entry.name))
                    continue
                }
                current[entry.name] = entry
                // Files present at start were written while we were away; later ones must
                // hold still for a scan interval (unless inotify said they were closed).
                let stable = firstScan ? entry.modified < settled : previous[entry.name] == entry && entry.modified < settled
                if stable { queue.enqueue(.fresh(entry.name)) }
            }
            previous = current
            firstScan = false
        }
    }
}

/// Work for a drop folder's workers: a name still in the folder, or a stem already claimed
/// (left in `.processing/` by a crash).
enum DropItem: Hashable, Sendable {
    case fresh(String)
    case claimed(String)
}
