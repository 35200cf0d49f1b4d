import SkyLib
/// Where nodes find each other: every role of the registry, in one store.
///
/// The roles are small protocols, so each part asks only for what it uses (the reaper a
/// ``NodeDirectory``, an ``EventLog`` and a ``LeaseStore``; the span recorder a
/// ``SpanStore``) and a new concern grows a role, not every caller. Two drivers conform to
/// all of them: `SQLiteRegistry` (module RegistrySQLite, the embedded default, one file
/// shared by the processes of one host) and `MongoRegistry` (module RegistryMongo, many
/// hosts); both pass the one conformance suite in RegistryTests. Routers never read the
/// registry on the request path: they read a ``RegistryCache`` that refreshes in the background.
public protocol Registry: NodeDirectory, EventLog, SpanStore, LeaseStore, RouteStore, CommandQueue, CountStore, DedupeStore, FailedStore {
    /// A short description for logs (`sqlite:/path`, `mongodb://host/db`), without credentials.
    var displayName: String { get }
}
