import ArgumentParser
import Foundation
import NodeRuntime
import RegistryKit
import SkyLib
import RouteModel

/// `sky stats`: requests that succeeded and failed per route, across every router and initiator.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Requests that succeeded and failed per route, totalled over every router and initiator in the cluster.",
        discussion: """
            Each node writes its own counts into the registry every second and at shutdown; totals \
            merge them as a G-Counter (per node the highest value seen, summed over nodes), so a \
            node that restarted or a count read twice is never double-counted, and a node that \
            died keeps its last count. A node killed outright loses at most its last second.
            """
    )

    /// One route's row: the usual question during an incident.
    @Option(help: "Only this route.") var route: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    /// The cluster's counts per route from the registry's G-Counter: every router's last values,
    /// dead ones included, so a total does not drop when a router stops.
    func run() async throws {
        let registry = try await RegistryAddress.resolve(flag: self.registry).open()
        let rows = try await registry.counts().routeTotals.filter { self.route == nil || $0.route == self.route }
        if self.json {
            let routes = JSONValue.object(Dictionary(uniqueKeysWithValues: rows.map { row in
                (row.route, JSONValue.object(["ok": .int(row.ok), "failed": .int(row.failed), "nodes": .int(Int64(row.nodes))]))
            }))
            Output.line(JSONWriter.string([
                "routes": routes,
                "ok": .int(rows.reduce(0) { $0 + $1.ok }), "failed": .int(rows.reduce(0) { $0 + $1.failed }),
            ]))
            return
        }
        guard !rows.isEmpty else {
            Output.line(self.route.map { "no requests counted for route \($0) in \(registry.displayName)" } ?? "no requests counted in \(registry.displayName) yet")
            return
        }
        Output.line(Table.render(header: ["ROUTE", "OK", "FAILED", "NODES"], rows: rows.map { [$0.route, "\($0.ok)", "\($0.failed)", "\($0.nodes)"] }))
    }
}
