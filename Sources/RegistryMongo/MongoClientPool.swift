import CMongoc
import Foundation
import Logging
import NIOPosix
import SkyLib
import RegistryKit

/// A failure reported by libmongoc or by the server.
public struct MongoError: Error, Sendable, CustomStringConvertible {
    /// libbson error domain (0 for server replies).
    public var domain: UInt32
    /// Error code (server codes such as 11000 for a duplicate key).
    public var code: Int
    /// What libmongoc or the server said.
    public var message: String

    /// The message with libmongoc's domain and code, which its documentation lists.
    public var description: String { "\(self.message) (domain \(self.domain), code \(self.code))" }

    /// A duplicate-key write (code 11000).
    public var isDuplicateKey: Bool { self.code == 11000 }
}

/// Owns a `mongoc_client_pool_t` and runs every libmongoc call on its own thread pool, never on
/// an event loop or the cooperative pool.
///
/// `@unchecked Sendable`: mongoc documents `mongoc_client_pool_t` as thread-safe; a
/// `mongoc_client_t` is not, and never leaves the one closure that popped it.
final class MongoClientPool: @unchecked Sendable {
    /// libmongoc's `mongoc_client_pool_t`: thread-safe, so any pool thread may pop a client from
    /// it. Destroyed through ``Handles`` only, never twice.
    private let pool: OpaquePointer
    /// The parsed URI the pool was made from, destroyed with it.
    private let uri: OpaquePointer
    /// The threads libmongoc's blocking calls run on, so none blocks an event loop or the
    /// cooperative pool; as many as the pool has clients, so a call never waits for a thread while
    /// holding a client.
    private let threads: NIOThreadPool
    /// The database named in the URI, or `skynet`.
    let database: String

    /// A pool's libmongoc handles, kept apart from the object so the process's exit can destroy
    /// them too. `@unchecked Sendable`: the pointers are only used under ``live``'s lock here.
    private struct Handles: @unchecked Sendable {
        let pool: OpaquePointer
        let uri: OpaquePointer
        /// Clients popped and not yet pushed back: the exit leaves such a pool alone, as a
        /// crash would, rather than free what a thread still uses.
        var busy = 0
    }

    /// The pools not yet destroyed, by their address.
    ///
    /// Why: a pool runs libmongoc's server-monitor threads until it is destroyed. A `sky`
    /// command that returns with its registry still open, or whose last reference is dropped on
    /// a pool thread just as the main thread returns, used to reach `exit` with those threads
    /// running while the C library's exit handlers freed what they use: one fresh-clone CI run
    /// died of "double free or corruption" in `sky nodes`. Destroying under this lock, and from
    /// an exit handler registered after libmongoc's own, makes the exit wait for a destroy in
    /// progress and destroy what is left before anything under it is torn down.
    private static let live = Locked<[UInt: Handles]>([:])

    /// Destroys the pool at `key` unless it is gone already; the lock is held throughout, so a
    /// concurrent exit waits for it.
    private static func destroy(_ key: UInt) {
        Self.live.withLock { live in
            guard let handles = live.removeValue(forKey: key) else { return }
            mongoc_client_pool_destroy(handles.pool)
            mongoc_uri_destroy(handles.uri)
        }
    }

    /// Thread pools told to stop by a `deinit` and not yet joined.
    ///
    /// Why: a pool thread that ends runs its thread-local destructors, OpenSSL's among them
    /// (libmongoc initialises it on every thread that talks to a server). When that ran just as
    /// the main thread returned, after OpenSSL's own exit handler had freed its global lock,
    /// the thread crashed in `pthread_rwlock_rdlock` on a null lock: one fresh-clone CI run lost
    /// `sky nodes` to it. The exit handler below waits for these joins first.
    private static let stopping = DispatchGroup()

    /// Makes `mongoc_init` run once per process.
    private static let initialized: Bool = {
        mongoc_init()
        // Registered after mongoc_init (and the TLS library's own handlers), so it runs before
        // them: exit handlers run in reverse order.
        atexit {
            // Bounded: a thread still inside a libmongoc call ends when the call does (its
            // socket timeout); an exit does not wait that long for it.
            _ = MongoClientPool.stopping.wait(timeout: .now() + .seconds(2))
            MongoClientPool.live.withLock { live in
                for handles in live.values where handles.busy == 0 {
                    mongoc_client_pool_destroy(handles.pool)
                    mongoc_uri_destroy(handles.uri)
                }
                live.removeAll()
            }
        }
        // libmongoc logs to stderr on its own; send warnings and worse through swift-log instead.
        mongoc_log_set_handler({ level, domain, message, _ in
            guard level.rawValue <= MONGOC_LOG_LEVEL_WARNING.rawValue else { return }
            let text = message.map { String(cString: $0) } ?? ""
            let source = domain.map { String(cString: $0) } ?? "mongoc"
            Logger(label: "mongoc").warning("\(source): \(text)")
        }, nil)
        return true
    }()

    /// Opens a pool for `uriString`, with short server-selection and connect timeouts unless
    /// the URI sets its own, so an unreachable registry fails fast instead of hanging callers.
    init(uriString: String, threads: Int = 4) throws(MongoError) {
        _ = Self.initialized
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(uriString, &error) else {
            throw Self.error(from: error)
        }
        for (option, value) in [(MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000), (MONGOC_URI_CONNECTTIMEOUTMS, 2000), (MONGOC_URI_SOCKETTIMEOUTMS, 10000)]
        where !mongoc_uri_has_option(uri, option) {
            mongoc_uri_set_option_as_int32(uri, option, Int32(value))
        }
        // As many connections as threads: a thread never waits for a connection another holds.
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, Int32(threads))
        guard let pool = mongoc_client_pool_new(uri) else {
            mongoc_uri_destroy(uri)
            throw MongoError(domain: 0, code: 0, message: "cannot create a client pool for \(uriString)")
        }
        mongoc_client_pool_set_error_api(pool, Int32(MONGOC_ERROR_API_VERSION_2))
        mongoc_client_pool_set_appname(pool, "skynet")
        self.uri = uri
        self.pool = pool
        Self.live.withLock { $0[UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(pool)))] = Handles(pool: pool, uri: uri) }
        self.database = mongoc_uri_get_database(uri).map { String(cString: $0) } ?? "skynet"
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
    }

    /// No command is running here (each holds `self`), so the pool can go at once. The threads
    /// are stopped without waiting: this may run on one of them, which cannot join itself. The
    /// process's exit waits for their join instead (``stopping``).
    deinit {
        Self.destroy(self.key)
        Self.stopping.enter()
        self.threads.shutdownGracefully { _ in Self.stopping.leave() }
    }

    /// Whether the libmongoc pool has been destroyed (its monitor threads ended).
    var isDestroyed: Bool { Self.live.withLock { $0[self.key] == nil } }

    /// This pool's key in ``live``.
    private var key: UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(self.pool))) }

    /// Runs a database command and answers the server's reply as JSON (relaxed extended JSON:
    /// dates appear as `{"$date": …}`).
    /// - Throws: ``MongoError`` for transport failures, `ok: 0` replies and write errors.
    func command(_ command: MongoDocument) async throws -> JSONValue {
        let text = command.extendedJSON
        return try await self.threads.runIfActive { [self] in
            let (database, pool, key) = (self.database, self.pool, self.key)
            var error = bson_error_t()
            guard let bson = bson_new_from_json(text, -1, &error) else { throw Self.error(from: error) }
            defer { bson_destroy(bson) }
            guard Self.live.withLock({ $0[key]?.busy += 1; return $0[key] != nil }) else {
                throw MongoError(domain: 0, code: 0, message: "the client pool is closed")
            }
            let client = mongoc_client_pool_pop(pool)
            defer {
                mongoc_client_pool_push(pool, client)
                Self.live.withLock { $0[key]?.busy -= 1 }
            }
            // A reply is an out-parameter libmongoc initialises itself: give it aligned storage.
            let storage = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 128)
            defer { storage.deallocate() }
            let reply = OpaquePointer(storage)
            let ok = mongoc_client_command_simple(client, database, bson, nil, reply, &error)
            defer { bson_destroy(reply) }
            guard ok else { throw Self.error(from: error) }
            var length = 0
            guard let json = bson_as_relaxed_extended_json(reply, &length) else {
                throw MongoError(domain: 0, code: 0, message: "reply could not be read as JSON")
            }
            defer { bson_free(json) }
            let value = try JSONParser.parse(UnsafeRawBufferPointer(start: json, count: length))
            if let writeErrors = value["writeErrors"]?.arrayValue, let first = writeErrors.first {
                throw MongoError(domain: 0, code: Int(first["code"]?.intValue ?? 0), message: first["errmsg"]?.stringValue ?? "write error")
            }
            return value
        }
    }

    /// Stops the thread pool once the commands running on it finish, then destroys the libmongoc
    /// pool (its monitor threads end); later commands fail without reaching it.
    func shutdown() async {
        Self.stopping.enter()
        defer { Self.stopping.leave() }
        try? await self.threads.shutdownGracefully()
        Self.destroy(self.key)
    }

    /// A libmongoc error as ours, its domain and code kept (server selection failed is domain 15,
    /// code 13053).
    private static func error(from error: bson_error_t) -> MongoError {
        var error = error
        let message = withUnsafeBytes(of: &error.message) { buffer in
            String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return MongoError(domain: error.domain, code: Int(error.code), message: message)
    }
}
