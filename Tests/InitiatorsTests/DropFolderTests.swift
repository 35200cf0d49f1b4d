import Foundation
import Testing

@testable import Initiators

/// The folder listing the watcher's scans use, and the queue they feed.
@Suite struct DropFolderTests {
    let folder = try! DropFolder(path: NSTemporaryDirectory() + "sky-folder-\(UUID().uuidString.prefix(8))")

    /// A scan does not look at names already queued: they are neither returned nor stat'ed
    /// again while a backlog drains.
    @Test func aScanSkipsQueuedNames() throws {
        for name in ["a.json", "b.json", "c.txt", ".hidden.json"] {
            #expect(FileManager.default.createFile(atPath: self.folder.root + "/" + name, contents: Data("{}".utf8)))
        }
        let queue = WorkQueue<DropItem>()
        queue.enqueue(.fresh("a.json"))
        #expect(queue.isQueued(.fresh("a.json")))
        let listed = try self.folder.entries(pattern: "*.json", skipping: { queue.isQueued(.fresh($0)) })
        #expect(listed.map(\.name) == ["b.json"])
        // Once handled, a name still in the folder is looked at again.
        queue.done(.fresh("a.json"))
        #expect(!queue.isQueued(.fresh("a.json")))
        #expect(try self.folder.entries(pattern: "*.json", skipping: { queue.isQueued(.fresh($0)) }).map(\.name) == ["a.json", "b.json"])
    }
}
