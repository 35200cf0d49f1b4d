import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NodeRuntime
import RegistryKit
import SkyLib
import RouteModel
import TLS

/// `sky progress`: long work in flight across the cluster — CSV files (bytes and rows done)
/// and drop folders' backlogs (files done of found) — with a live bar per piece.
struct ProgressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "progress",
        abstract: "Show CSV files and drop-folder backlogs in flight, with a live bar each.",
        discussion: """
            Asks every router and initiator in the registry (or the nodes given with --node) for \
            GET /debug/progress. On a terminal the view redraws every second until Ctrl-C; \
            --once prints it once, --json prints the JSON once.
            """
    )

    /// Nodes to ask directly, for a node that is not in this registry or a registry that cannot be
    /// reached; the registry's routers and initiators otherwise.
    @Option(name: .customLong("node"), help: "Ask this node (http://HOST:PORT) instead of the registry's routers and initiators; repeatable.")
    var nodes: [String] = []
    /// JSON once, for scripts: the same documents the nodes answer, with how many nodes answered,
    /// so a caller can tell an idle cluster from an unreachable one.
    @Flag(help: "Print JSON once: {\"progress\": [...], \"nodes\": N}.") var json = false
    @Flag(help: "Print the view once and exit.") var once = false
    /// One second, as the nodes' own counters move; at least 0.1 s, so a typo cannot make it poll
    /// every node in a loop.
    @Option(help: "Seconds between redraws.") var interval: Double = 1
    @Option(help: "Registry address (default: $SKYNET_REGISTRY, else sqlite:.skynet/registry.sqlite).") var registry: String?
    @OptionGroup var tlsClient: TLSClientOptions

    /// A positive redraw interval.
    func validate() throws {
        guard self.interval >= 0.1 else { throw ValidationError("--interval must be at least 0.1 seconds") }
        for node in self.nodes where !(node.hasPrefix("http://") || node.hasPrefix("https://")) {
            throw ValidationError("--node '\(node)' must be a URL like http://127.0.0.1:8080")
        }
    }

    /// Redraws the view every `--interval` until interrupted (or once, with `--once` or `--json`).
    func run() async throws {
        let live = !self.json && !self.once && isatty(STDOUT_FILENO) == 1
        repeat {
            let (snapshots, asked) = try await self.gather()
            if self.json {
                Output.line(JSONWriter.string(["progress": .array(snapshots.map(\.json)), "nodes": .int(Int64(asked))]))
                return
            }
            let view = Self.render(snapshots, asked: asked, width: Self.terminalWidth())
            // Home and clear, then the view: a redraw in place.
            Output.line(live ? "\u{1B}[H\u{1B}[2J" + view : view)
            if live { try await Task.sleep(for: .milliseconds(Int64(self.interval * 1000))) }
        } while live
    }

    /// Every node's snapshots, and how many nodes answered.
    func gather() async throws -> ([ProgressBoard.Snapshot], Int) {
        var urls = self.nodes
        if urls.isEmpty {
            let registry = try await RegistryAddress.resolve(flag: self.registry).open()
            urls = try await registry.nodes().filter { [.router, .initiator].contains($0.kind) && $0.status != .draining }
                .map { AdvertisedAddress.url($0.address, path: "") }
        }
        // The same client TLS as the dashboard's: the cluster's authority, and a client
        // certificate for nodes that require one (mutual TLS).
        let tls = try self.tlsClient.nodeTLS()
        let token = try CommonOptions.token()
        var snapshots: [ProgressBoard.Snapshot] = []
        var answered = 0
        for base in urls {
            let url = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/debug/progress"
            var request = HTTPClientRequest(url: url)
            request.tlsConfiguration = tls?.client
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(3)), response.status == .ok,
                let body = try? await response.body.collect(upTo: 4 << 20),
                let document = try? body.withUnsafeReadableBytes({ bytes throws(JSONParseError) in try JSONParser.parse(bytes) })
            else { continue }
            answered += 1
            snapshots += (document["progress"]?.arrayValue ?? []).compactMap(ProgressBoard.Snapshot.init(json:))
        }
        return (snapshots.sorted { $0.startedAt < $1.startedAt }, answered)
    }

    /// The view: a line per piece of work with its bar.
    static func render(_ snapshots: [ProgressBoard.Snapshot], asked: Int, width: Int) -> String {
        guard !snapshots.isEmpty else { return "nothing in flight (\(asked) node\(asked == 1 ? "" : "s") asked)" }
        var lines: [String] = []
        for item in snapshots {
            let percent = Int((item.fraction * 100).rounded(.down))
            let count = item.total.map { "\(item.done)/\($0) \(item.unit)" } ?? "\(item.done) \(item.unit)"
            let left = item.secondsLeft.map { "\(Self.duration($0)) left" } ?? "—"
            let rate = String(format: "%.1f %@/s", item.rate, item.unit)
            let bytes = item.bytesTotal.map { " · \(Self.bytes(item.bytesDone ?? 0)) of \(Self.bytes($0))" } ?? ""
            lines.append("\(item.route)  \(item.name) (\(item.kind.rawValue))")
            let barWidth = max(10, min(50, width - 40))
            let filled = Int((item.fraction * Double(barWidth)).rounded(.down))
            lines.append("  [" + String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled) + "] \(percent)%  \(count)\(bytes)  \(rate)  \(left)")
        }
        return lines.joined(separator: "\n")
    }

    /// Seconds, minutes or hours, whichever reads at a glance.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole >= 3600 ? "\(whole / 3600)h\(whole % 3600 / 60)m" : whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }

    /// Bytes in KiB, MiB or GiB.
    static func bytes(_ count: Int64) -> String {
        count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / 1_048_576) : count >= 1024 ? "\(count / 1024) KiB" : "\(count) B"
    }

    /// The terminal's columns (80 when not a terminal), so bars never wrap.
    static func terminalWidth() -> Int {
        var size = winsize()
        return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 100
    }
}
