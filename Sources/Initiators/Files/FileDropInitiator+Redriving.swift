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
                    guard let stem = item.details["file"], !stem.isEmpty, !stem.contains("/") else {
                        refused[item.id] = "it names no file"
                        continue
                    }
                    if access(folder.root + "/" + stem, F_OK) == 0 {
                        refused[item.id] = "a file named \(stem) is already waiting in \(source.dir)"
                    } else if rename(folder.failed + "/" + stem, folder.root + "/" + stem) != 0 {
                        refused[item.id] = "cannot move \(source.dir)/.failed/\(stem) back: \(String(cString: strerror(errno)))"
                    } else {
                        unlink(folder.failed + "/" + stem + ".error.json")
                    }
                }
                return refused
            }
        } catch {
            return Dictionary(uniqueKeysWithValues: items.map { ($0.id, "\(error)") })
        }
    }
}
