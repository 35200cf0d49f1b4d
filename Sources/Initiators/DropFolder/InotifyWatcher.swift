import Glibc

/// Linux inotify on one folder: reports names of files that were closed after writing or
/// moved in, i.e. complete files, never `IN_MODIFY` half-writes.
///
/// `@unchecked Sendable`: owns a file descriptor that only ``wait(timeoutMilliseconds:)``
/// reads, from one thread at a time (its owner's dedicated thread).
final class InotifyWatcher: @unchecked Sendable {
    private let fd: Int32

    /// Watches `directory`.
    /// - Throws: ``SkyFileError`` when inotify is unavailable (then the caller polls).
    init(directory: String) throws(DropFolderError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw DropFolderError(path: directory, reason: "inotify unavailable: \(String(cString: strerror(errno)))") }
        guard inotify_add_watch(fd, directory, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO)) >= 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw DropFolderError(path: directory, reason: "cannot watch with inotify: \(reason)")
        }
        self.fd = fd
    }

    deinit {
        close(self.fd)
    }

    /// Blocks up to `timeoutMilliseconds` for events.
    /// - Returns: the names that became complete, and whether the kernel's queue overflowed
    ///   (then names were lost and the folder must be rescanned).
    func wait(timeoutMilliseconds: Int32) -> (names: [String], overflowed: Bool) {
        var descriptor = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeoutMilliseconds) > 0 else { return ([], false) }
        var names: [String] = []
        var overflowed = false
        let capacity = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: MemoryLayout<inotify_event>.alignment)
        defer { buffer.deallocate() }
        while true {
            let count = read(self.fd, buffer, capacity)
            guard count > 0 else { break }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= count {
                let mask = buffer.load(fromByteOffset: offset + 4, as: UInt32.self)
                let length = Int(buffer.load(fromByteOffset: offset + 12, as: UInt32.self))
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { overflowed = true }
                if length > 0 {
                    let start = buffer.advanced(by: offset + header).assumingMemoryBound(to: CChar.self)
                    names.append(String(cString: start))
                }
                offset += header + length
            }
        }
        return (names, overflowed)
    }
}
