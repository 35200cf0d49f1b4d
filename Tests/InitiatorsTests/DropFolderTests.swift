import Foundation
// `dirent` reaches Swift through CoreFoundation once it is in the graph (as in DropFolder.swift).
import CoreFoundation
import Glibc
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

    /// A `readdir` record is only as long as its name, and the last one of `readdir`'s buffer
    /// may end where readable memory does: its name is read in place, never copied as the
    /// whole 256-byte array (which crashed `sky run` listing 20,000 files in `make bench`).
    /// The record here ends at a page that cannot be read: a read past it is a crash.
    @Test(arguments: ["in.json", "a", String(repeating: "n", count: 200) + ".json", "ünïcödé.json"])
    func aRecordEndingAtUnreadableMemoryIsReadInPlace(name: String) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let memory = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(memory != UnsafeMutableRawPointer(bitPattern: -1))
        defer { munmap(memory, 2 * page) }
        #expect(mprotect(memory + page, page, PROT_NONE) == 0)
        let nameOffset = try #require(MemoryLayout<dirent>.offset(of: \dirent.d_name))
        let bytes = Array(name.utf8) + [0]
        // As the kernel lays records out: the name, its NUL, padding to 8 bytes.
        let length = (nameOffset + bytes.count + 7) & ~7
        let record = memory + (page - length)
        record.storeBytes(of: UInt16(length), toByteOffset: MemoryLayout<dirent>.offset(of: \dirent.d_reclen)!, as: UInt16.self)
        bytes.withUnsafeBytes { (record + nameOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        #expect(length < MemoryLayout<dirent>.size)
        #expect(DropFolder.name(of: record.assumingMemoryBound(to: dirent.self)) == name)
    }

    /// Names of every length a file system allows come back whole from a real listing.
    @Test func namesOfEveryLengthAreListedWhole() throws {
        let names = (1...250).map { "f" + String(repeating: "x", count: $0 - 1) }.filter { !DropFolder.isIgnored($0) }
        for name in names {
            #expect(FileManager.default.createFile(atPath: self.folder.root + "/" + name, contents: Data()))
        }
        #expect(try self.folder.entries(pattern: "*").map(\.name) == names.sorted())
    }
}
