import Foundation
import NIOPosix
import SkyLib
public import RouteModel

extension CSVInitiator: Redriving {
    /// Puts failed rows back as new CSV files, one per file and header they came from (lines
    /// kept, see ``CSVRedriveOrigin``), and parked files back into the folder from `.failed/`.
    public func redrive(_ items: [Redrive]) async -> [String: String] {
        let source = self.configuration.source
        do {
            return try await self.threadPool.runIfActive { () throws -> [String: String] in
                let folder = try DropFolder(path: source.dir)
                var refused: [String: String] = [:]
                var groups: [[String?]: [Redrive]] = [:]
                for item in items {
                    guard let file = item.details["file"], !file.isEmpty, !file.contains("/") else {
                        refused[item.id] = "it names no file"
                        continue
                    }
                    if item.details["whole"] == "true" {
                        refused[item.id] = folder.putBack(file, removing: [".error.json", ".checkpoint"])
                        continue
                    }
                    guard item.input != nil, item.details["line"].flatMap(Int.init) != nil else {
                        refused[item.id] = "the row (\(item.inputBytes) bytes) was not kept; it is in \(source.dir)/.out/\(file).rejects.csv"
                        continue
                    }
                    groups[[file, item.details["header"]], default: []].append(item)
                }
                for (index, (key, rows)) in groups.sorted(by: { ($0.key.first ?? "") ?? "" < ($1.key.first ?? "") ?? "" }).enumerated() {
                    let header = key[1].flatMap { try? JSONParser.parse($0) }?.arrayValue?.compactMap(\.stringValue)
                    let ordered = rows.sorted { Int($0.details["line"] ?? "") ?? 0 < Int($1.details["line"] ?? "") ?? 0 }
                    do {
                        _ = try CSVRedriveOrigin.writeBack(
                            rows: ordered.map { ($0.input ?? "", Int($0.details["line"] ?? "") ?? 0) }, header: header, file: key[0] ?? "",
                            delimiter: source.delimiter, folder: folder, sequence: index
                        )
                    } catch {
                        for row in rows { refused[row.id] = "cannot write the rows back: \(error)" }
                    }
                }
                return refused
            }
        } catch {
            return Dictionary(uniqueKeysWithValues: items.map { ($0.id, "\(error)") })
        }
    }
}
