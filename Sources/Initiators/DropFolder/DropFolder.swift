import Foundation
// On Linux `struct stat` reaches Swift through a module map other than Glibc (CDispatch, or CoreFoundation
// once NIOSSL is in the graph); MemberImportVisibility wants the one it picked named.
import CDispatch
import CoreFoundation
import Glibc
import SkyLib
import RouteModel

/// Why a drop-folder operation failed, naming the path.
public struct DropFolderError: Error, Sendable, CustomStringConvertible {
    /// The file or folder the operation was on.
    public var path: String
    /// What went wrong, for people.
    public var reason: String
    public var description: String { "\(self.path): \(self.reason)" }
}

/// A folder users drop files into, and its bookkeeping subfolders:
///
/// | Folder | Holds |
/// |---|---|
/// | `DIR/` | new files, untouched until taken |
/// | `DIR/.processing/` | files taken (claimed by an atomic rename), being processed |
/// | `DIR/.out/` | results: `NAME.json` (files) or `NAME.results.jsonl` and `NAME.rejects.csv` (CSV) |
/// | `DIR/.done/` | inputs that were processed |
/// | `DIR/.failed/` | inputs that failed for good, each with `NAME.error.json` |
///
/// Every method does blocking file I/O: call it from a thread pool.
struct DropFolder: Sendable {
    let root: String
    let processing: String
    let out: String
    let done: String
    let failed: String

    /// Opens (creating if needed) the folder and its subfolders. A relative `path` is taken
    /// from the process's working directory.
    init(path: String) throws(DropFolderError) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let root = URL(fileURLWithPath: absolute).standardizedFileURL.path
        self.root = root
        self.processing = root + "/.processing"
        self.out = root + "/.out"
        self.done = root + "/.done"
        self.failed = root + "/.failed"
        for folder in [root, self.processing, self.out, self.done, self.failed] {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw DropFolderError(path: folder, reason: "cannot create folder: \(error.localizedDescription)")
            }
        }
    }

    /// A file waiting in the folder.
    struct Entry: Sendable, Hashable {
        var name: String
        var size: Int64
        var modified: Double
        /// A regular file or a symlink; `false` for a directory, FIFO, socket or device, which
        /// is listed so that it is refused (logged and counted) even when no inotify event
        /// named it: one present at start, or moved in before the watch was set up.
        var isFile = true
    }

    /// Names that are never taken: dotfiles and the temporary names editors and copy tools use
    /// while writing.
    static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasPrefix("#") || name.hasSuffix("~") || name.hasSuffix(".tmp") || name.hasSuffix(".part")
            || name.hasSuffix(".swp") || name.hasSuffix(".crdownload")
    }

    /// Files in the folder that match `pattern` (a shell glob), symlinks included, and the names
    /// matching it that are not files (``Entry/isFile`` false).
    /// - Parameter skipping: names not to look at (not `lstat`ed, not returned): those already
    ///   queued. A folder of 20,000 waiting files cost 20,000 `lstat`s a second otherwise,
    ///   17 per file taken (strace of benchmark 3).
    func entries(pattern: String, skipping: (String) -> Bool = { _ in false }) throws(DropFolderError) -> [Entry] {
        guard let directory = opendir(self.root) else {
            throw DropFolderError(path: self.root, reason: "cannot list the folder: \(String(cString: strerror(errno)))")
        }
        defer { closedir(directory) }
        var entries: [Entry] = []
        while let entry = readdir(directory) {
            let name = Self.name(of: entry)
            guard !Self.isIgnored(name), fnmatch(pattern, name, 0) == 0, !skipping(name) else { continue }
            var info = Glibc.stat()
            guard lstat(self.root + "/" + name, &info) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            guard kind == S_IFREG || kind == S_IFLNK else {
                entries.append(Entry(name: name, size: 0, modified: 0, isFile: false))
                continue
            }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            entries.append(Entry(name: name, size: Int64(info.st_size), modified: modified))
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// Where a `dirent`'s name starts (19 on 64-bit Linux, after `d_ino`, `d_off`, `d_reclen`
    /// and `d_type`: the fallback is never taken for a C struct's stored field).
    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19

    /// The name of a `readdir` record, read in place up to its NUL.
    ///
    /// Never `entry.pointee.d_name`: that copies the whole 256-byte array, and a record is only
    /// as long as its name (`d_reclen`), so for the last record of `readdir`'s buffer the copy
    /// read past the buffer's end, into whatever followed: `sky run` crashed there (a bad
    /// pointer dereference at a page boundary) listing a folder of 20,000 files in
    /// `make bench`.
    static func name(of entry: UnsafePointer<dirent>) -> String {
        String(cString: UnsafeRawPointer(entry).advanced(by: Self.nameOffset).assumingMemoryBound(to: CChar.self))
    }

    /// What a name in the folder is, following a symlink.
    enum Kind: Equatable {
        case regular
        /// Gone (taken by another process, or removed).
        case missing
        /// Anything else, named for the log: a directory, a FIFO, a socket, a device, a
        /// symlink to nothing. Never taken: reading it would hang, fail or mean nothing.
        case other(String)
    }

    /// What taking a fresh name came to.
    enum Take: Sendable {
        /// Claimed into `.processing/` as `stem`; `escapes`: a symlink to a file outside the
        /// folder (refused: the caller parks it).
        case claimed(stem: String, escapes: Bool)
        /// Gone: another process took it, or it was removed.
        case gone
        /// Not a regular file (named for the log); left where it is.
        case notAFile(String)
    }

    /// Takes `name` (blocking): a regular file (symlinks followed) is claimed; the caller
    /// makes one trip to the thread pool for all of it.
    func take(_ name: String) throws(DropFolderError) -> Take {
        switch self.kind(of: name) {
        case .missing: return .gone
        case .other(let what): return .notAFile(what)
        case .regular: break
        }
        let escapes = self.escapes(name)
        guard let stem = try self.claim(name) else { return .gone }
        return .claimed(stem: stem, escapes: escapes)
    }

    /// What `name` in the folder is (symlinks followed).
    func kind(of name: String) -> Kind {
        let path = self.root + "/" + name
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return .missing }
        guard stat(path, &info) == 0 else { return .other("a symlink to nothing") }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .other("a directory")
        case S_IFIFO: return .other("a FIFO")
        case S_IFSOCK: return .other("a socket")
        case S_IFCHR, S_IFBLK: return .other("a device")
        default: return .other("not a regular file")
        }
    }

    /// Whether `name` in the folder is a symlink that leads outside it (refused).
    func escapes(_ name: String) -> Bool {
        let path = self.root + "/" + name
        var info = Glibc.stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return false }
        guard let resolved = realpath(path, nil) else { return true }
        defer { free(resolved) }
        let target = String(cString: resolved)
        return !target.hasPrefix(self.root + "/")
    }

    /// Takes `name` by renaming it into `.processing/` under a stem no earlier file used.
    /// - Returns: the stem, or `nil` when the file is gone (another process took it).
    func claim(_ name: String) throws(DropFolderError) -> String? {
        let stem = self.uniqueStem(for: name)
        if rename(self.root + "/" + name, self.processing + "/" + stem) == 0 { return stem }
        if errno == ENOENT { return nil }
        throw DropFolderError(path: self.root + "/" + name, reason: "cannot claim: \(String(cString: strerror(errno)))")
    }

    /// `name`, or `name` with a time and counter before its extension when that name was used
    /// before, so `.done/` and `.out/` never clash.
    func uniqueStem(for name: String) -> String {
        // access(2), not FileManager: five checks per file taken, each a plain lookup.
        func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
        func taken(_ stem: String) -> Bool {
            let paths: [String] = [
                self.processing + "/" + stem, self.done + "/" + stem, self.failed + "/" + stem, self.out + "/" + stem + ".json",
                self.out + "/" + stem + ".results.jsonl",
            ]
            return paths.contains(where: exists)
        }
        if !taken(name) { return name }
        let ext = (name as NSString).pathExtension
        let base = ext.isEmpty ? name : String(name.dropLast(ext.count + 1))
        let millis = WallClock.epochMilliseconds()
        for counter in 0..<10_000 {
            let stem = "\(base)~\(millis)-\(counter)" + (ext.isEmpty ? "" : ".\(ext)")
            if !taken(stem) { return stem }
        }
        return "\(base)~\(millis)-\(UUID().uuidString)" + (ext.isEmpty ? "" : ".\(ext)")
    }

    /// Stems left in `.processing/` (by a crash), oldest first, bookkeeping files excluded.
    func leftovers() throws(DropFolderError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: self.processing)
        } catch {
            // Not "none": files there would never be taken again.
            throw DropFolderError(path: self.processing, reason: "cannot list the files left by an earlier stop: \(error.localizedDescription)")
        }
        return names.filter { name in
            var info = Glibc.stat()
            guard !name.hasPrefix("."), !name.hasSuffix(".checkpoint"), !name.hasSuffix(".checkpoint.tmp"),
                stat(self.processing + "/" + name, &info) == 0
            else { return false }
            return info.st_mode & S_IFMT == S_IFREG
        }.sorted()
    }

    /// Reads a claimed file, refusing one over `limit` bytes.
    func read(_ stem: String, limit: Int) throws(DropFolderError) -> Data {
        let path = self.processing + "/" + stem
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DropFolderError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }  // read-only: a close error loses nothing
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw DropFolderError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard data.count <= limit else { throw DropFolderError(path: path, reason: "file is over the limit of \(limit) bytes") }
        return data
    }

    /// Writes `data` to `folder/name` atomically (a temporary file renamed into place), so a
    /// reader never sees half a result.
    /// - Parameters:
    ///   - durable: whether the file is synced before it is renamed. Answers are not: they are
    ///     made durable in groups (``CommitQueue``) before their inputs move.
    ///   - temporaryName: the temporary file's name in `folder` (a hidden, unique one unless given).
    func writeAtomically(_ data: Data, to folder: String, name: String, durable: Bool, temporaryName: String? = nil) throws(DropFolderError) {
        let temporary = folder + "/" + (temporaryName ?? ".\(name).\(UUID().uuidString.prefix(8)).tmp")
        func failed(_ reason: String) -> DropFolderError {
            // A half-written temporary (disk full) must not be left behind.
            unlink(temporary)
            return DropFolderError(path: folder + "/" + name, reason: "cannot write: \(reason)")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failed(String(cString: strerror(errno))) }
        var problem: String?
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    problem = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        if problem == nil, durable, fsync(descriptor) != 0 { problem = String(cString: strerror(errno)) }
        // close can report a deferred write error (NFS, quotas): it counts as a failed write.
        if close(descriptor) != 0, problem == nil { problem = String(cString: strerror(errno)) }
        if let problem { throw failed(problem) }
        guard rename(temporary, folder + "/" + name) == 0 else { throw failed(String(cString: strerror(errno))) }
    }

    /// glibc's `syncfs(2)`, which it declares only under `_GNU_SOURCE` (not set for Swift's
    /// Glibc module), so it is looked up by name.
    private static let syncfs: (@convention(c) (Int32) -> Int32)? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs").map {
        unsafeBitCast($0, to: (@convention(c) (Int32) -> Int32).self)
    }

    /// Writes everything written so far on the folder's file system to disk (`syncfs`): the
    /// answers, and the renames that named them.
    func syncFileSystem() throws(DropFolderError) {
        let descriptor = open(self.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DropFolderError(path: self.root, reason: "cannot open to sync: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard let syncfs = Self.syncfs else {
            // Not Linux's glibc: the sync of everything (every file system) keeps the promise.
            Glibc.sync()
            return
        }
        guard syncfs(descriptor) == 0 else {
            throw DropFolderError(path: self.root, reason: "cannot sync to disk: \(String(cString: strerror(errno)))")
        }
    }

    /// Moves a claimed input from `.processing/` to `folder` (`done` or `failed`).
    /// Puts a parked file back from `.failed/` into the folder, where it is taken as a new file
    /// is (a redrive); its error file (and `extras`, files named after it) go.
    /// - Returns: why it cannot be put back (no such name, a file of that name already waiting,
    ///   the move failing), or `nil` when it was.
    func putBack(_ name: String?, removing extras: [String] = [".error.json"]) -> String? {
        guard let name, !name.isEmpty, !name.contains("/") else { return "it names no file" }
        if access(self.root + "/" + name, F_OK) == 0 { return "a file named \(name) is already waiting in \(self.root)" }
        guard rename(self.failed + "/" + name, self.root + "/" + name) == 0 else {
            return "cannot move \(self.failed)/\(name) back: \(String(cString: strerror(errno)))"
        }
        for extra in extras { unlink(self.failed + "/" + name + extra) }
        return nil
    }

    func move(_ stem: String, to folder: String) throws(DropFolderError) {
        guard rename(self.processing + "/" + stem, folder + "/" + stem) == 0 else {
            throw DropFolderError(path: self.processing + "/" + stem, reason: "cannot move to \(folder): \(String(cString: strerror(errno)))")
        }
    }
}
