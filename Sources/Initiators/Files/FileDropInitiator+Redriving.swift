import Foundation
import NIOPosix
import SkyLib
public import RouteModel

extension FileDropInitiator: Redriving {
    /// Moves each file back from `.failed/` into the folder (its error file removed), where it is
    /// taken as a new file is; a file no longer in `.failed/` cannot be.
    public func redrive(_ items: [Redrive]) async -> [String: String] {
        let source = self.configuration.source
        do {
            return try await self.threadPool.runIfActive { () throws -> [String: String] in
                let folder = try DropFolder(path: source.dir)
                var refused: [String: String] = [:]
                for item in items {
                    refused[item.id] = folder.putBack(item.details["file"])
                }
                return refused
            }
        } catch {
            return Dictionary(uniqueKeysWithValues: items.map { ($0.id, "\(error)") })
        }
    }
}
