import ArgumentParser
import Discovery
import NodeRuntime
import RegistryKit
import SkyLib
import RouteModel

/// `sky dns`: a DNS server answering SRV, A and AAAA queries for the registry's nodes.
struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Answer DNS (UDP and TCP) for the registry's nodes: SRV per ready instance, A/AAAA for its address.",
        discussion: """
            Names as SkyDNS had them: [id.][host.][region.][version.]SERVICE.ENVIRONMENT.DOMAIN; any \
            label may be 'any', and missing leading labels mean any. Versions are written with \
            dashes (1-0-0; 1 matches every 1.x.y). Try: dig @127.0.0.1 -p 8053 SRV uppercase.production.skydns.local
            """
    )

    @OptionGroup var common: CommonOptions

    @OptionGroup var admin: AdminOptions

    /// Port 8053 by default: 53 needs privileges, and a resolver can forward the zone to any port.
    @Option(help: "HOST:PORT for DNS over UDP and TCP (port 0 picks a free one).")
    var listen: HostPort = HostPort(host: "127.0.0.1", port: 8053)

    /// `skydns.local.` as the original Skynet's SkyDNS; the trailing dot makes it absolute.
    @Option(help: "The zone answered for.")
    var domain: String = "skydns.local."

    /// The zone must be a valid DNS name (labels of letters, digits and `-`), checked before
    /// anything listens.
    func validate() throws {
        let name = DNSName(self.domain)
        guard !name.labels.isEmpty, name.labels.allSatisfy({ DNSLabel.isValid($0) }) else {
            throw ValidationError("--domain '\(self.domain)' must be a domain name of valid labels (like skydns.local.)")
        }
    }

    /// Answers SRV and A/AAAA questions from the registry cache (refreshed in the background, never
    /// on a question's path), registers itself as a node, and serves its admin endpoints. The
    /// listeners run on the process's event loops (`NodeContext`), as every other role's do:
    /// the command chooses nothing of its own.
    func run() async throws {
        let context = try await self.common.context()
        let cache = RegistryCache(directory: context.registry, registryName: context.registry.displayName, logger: context.logger)
        var configuration = DNSServer.Configuration()
        configuration.host = self.listen.host
        configuration.port = self.listen.port
        configuration.domain = DNSName(self.domain)
        configuration.region = context.region
        let domain = configuration.domain
        let server = DNSServer(configuration: configuration, cache: cache, counters: context.counters, eventLoopGroup: context.eventLoopGroup, logger: context.logger) { host, port in
            Output.line("dns listening on \(host):\(port) for \(domain)")
        }
        let presence = context.presence(kind: .dns, service: "dns", address: "-")
        try await context.run([cache, presence.presence, server, context.adminServer(at: self.admin.address(in: context), presence: presence)])
    }
}
