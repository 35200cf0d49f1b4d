/// One route's totals over the cluster, from the routers' and initiators' counts.
public struct RouteTotal: Sendable, Equatable {
    /// The route.
    public var route: String
    /// Requests that succeeded (`route.NAME-processed`).
    public var ok: Int64
    /// Requests that failed (`route.NAME-errors`).
    public var failed: Int64
    /// Nodes that counted it.
    public var nodes: Int
}

extension GCounter {
    /// Totals per route, by name.
    public var routeTotals: [RouteTotal] {
        var routes = Set<String>()
        for name in self.names where name.hasPrefix("route.") {
            for suffix in ["-processed", "-errors"] where name.hasSuffix(suffix) && !name.hasSuffix("-async" + suffix) {
                routes.insert(String(name.dropFirst("route.".count).dropLast(suffix.count)))
            }
        }
        return routes.sorted().map { route in
            let ok = "route.\(route)-processed", failed = "route.\(route)-errors"
            return RouteTotal(route: route, ok: self.total(ok), failed: self.total(failed), nodes: max(self.nodes(ok), self.nodes(failed)))
        }
    }
}
