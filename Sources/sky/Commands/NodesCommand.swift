import ArgumentParser
import Foundation
import SkyLib

/// Filters shared by the query commands.
struct NodeFilterOptions: ParsableArguments {
    @Option(help: "Only this service.") var service: String?
    @Option(help: "Only these versions (1.2.0, 1.*, *).") var version: String?
    @Option(help: "Only this region.") var region: String?
    @Option(help: "Only this host.") var host: String?
    @Flag(help: "Print JSON instead of a table.") var json = false

    var query: NodeQuery { NodeQuery(service: self.service, version: self.version, region: self.region, host: self.host) }
}

/// `sky nodes`: every node in the registry.
struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List the nodes in the registry.")

    @OptionGroup var filter: NodeFilterOptions
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    func run() async throws {
        var common = CommonOptions()
        common.registry = self.registry
        let nodes = try await common.openRegistry().nodes(matching: self.filter.query)
        if self.filter.json {
            Output.line(JSONWriter.string(.array(nodes.map(\.json))))
            return
        }
        let now = Date()
        let rows = nodes.map { node in
            [String(node.id.prefix(8)), node.kind.rawValue, node.service, node.version, node.region, node.host, node.address,
             node.status.rawValue, String(format: "%.1fs", now.timeIntervalSince(node.heartbeatAt))]
        }
        Output.line(Table.render(header: ["ID", "KIND", "SERVICE", "VERSION", "REGION", "HOST", "ADDRESS", "STATUS", "HEARTBEAT"], rows: rows))
    }
}

/// `sky services`: services and their instances.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "List services with their instances.")

    @OptionGroup var filter: NodeFilterOptions
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?

    func run() async throws {
        var common = CommonOptions()
        common.registry = self.registry
        var query = self.filter.query
        query.kind = .service
        let nodes = try await common.openRegistry().nodes(matching: query)
        let groups = Dictionary(grouping: nodes) { "\($0.service)\u{0}\($0.version)" }.sorted { $0.key < $1.key }
        if self.filter.json {
            Output.line(JSONWriter.string(.array(groups.map { _, nodes in
                ["service": .string(nodes[0].service), "version": .string(nodes[0].version), "instances": .array(nodes.map(\.json))]
            })))
            return
        }
        let rows = groups.map { _, nodes in
            [nodes[0].service, nodes[0].version, "\(nodes.count)", "\(nodes.filter { $0.status == .ready }.count)",
             Set(nodes.map(\.region)).sorted().joined(separator: ","), nodes.map(\.address).joined(separator: " ")]
        }
        Output.line(Table.render(header: ["SERVICE", "VERSION", "INSTANCES", "READY", "REGIONS", "ADDRESSES"], rows: rows))
    }
}

/// Plain text tables for terminal output.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
