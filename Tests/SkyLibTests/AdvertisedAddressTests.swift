import Foundation
import SkyLib
import Testing

@Suite struct AdvertisedAddressTests {
    @Test func aSpecificHostIsAdvertisedAsBound() {
        #expect(AdvertisedAddress.forListener(host: "127.0.0.1", port: 9000) == "127.0.0.1:9000")
        #expect(AdvertisedAddress.forListener(host: "10.1.2.3", port: 80) == "10.1.2.3:80")
    }

    /// A wildcard bind advertises one of the host's own addresses, as `ip` lists them.
    @Test func aWildcardBindAdvertisesAnAddressOfThisHost() throws {
        let advertised = AdvertisedAddress.forListener(host: "0.0.0.0", port: 9000)
        #expect(!advertised.hasPrefix("0.0.0.0"))
        let ip = Process()
        ip.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        ip.arguments = ["-4", "-o", "addr", "show", "up"]
        let pipe = Pipe()
        ip.standardOutput = pipe
        try ip.run()
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ip.waitUntilExit()
        // "2: eth0    inet 10.0.0.5/24 brd …": the address of every interface but loopback.
        let addresses = listing.split(separator: "\n").filter { !$0.contains(" lo ") }.compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.firstIndex(of: "inet").map { String(fields[$0 + 1].split(separator: "/")[0]) }
        }
        if let first = addresses.first {
            #expect(addresses.contains(String(advertised.dropLast(":9000".count))), "\(advertised) not in \(addresses)")
            #expect(AdvertisedAddress.firstInterfaceAddress() == first)
        } else {
            #expect(AdvertisedAddress.firstInterfaceAddress() == nil)
        }
    }
}
