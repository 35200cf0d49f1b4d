import Foundation
import SkyLib
import RouteModel

/// Where the rows of a redrive file came from: their CSV file and, per line of the redrive
/// file, the line each row had there.
///
/// `sky failed redrive` puts rejected rows back as a new CSV file in the folder
/// (`NAME.redrive-TIME-N.csv`, the original header first) and this beside it, in
/// `DIR/.redrive/NAME.json`; when the file runs, its rows are answered, rejected and reported
/// under their first file and line, so a row that fails again is the same failed item, and the
/// answers name the lines users know.
struct CSVRedriveOrigin: Sendable, Equatable {
    /// The file the rows were first in.
    var file: String
    /// Line in the redrive file → line in ``file``.
    var lines: [Int: Int]

    /// `record` as it was in ``file``: its line the original one.
    func original(_ record: CSVReader.Record) -> CSVReader.Record {
        var record = record
        record.line = self.lines[record.line] ?? record.line
        return record
    }

    /// The folder of origins, beside the drop folder's other bookkeeping.
    static func folder(_ folder: DropFolder) -> String { folder.root + "/.redrive" }

    /// The origin of file `stem`, or `nil` for a file a user dropped (or an unreadable origin,
    /// which then runs under its own lines).
    static func read(folder: DropFolder, stem: String) -> CSVRedriveOrigin? {
        guard let data = FileManager.default.contents(atPath: Self.folder(folder) + "/" + stem + ".json"),
            let json = try? JSONParser.parse(data), let file = json["file"]?.stringValue
        else { return nil }
        var lines: [Int: Int] = [:]
        for (key, value) in json["lines"]?.objectValue ?? [:] {
            if let line = Int(key), let original = value.intValue { lines[line] = Int(original) }
        }
        return CSVRedriveOrigin(file: file, lines: lines)
    }

    /// Forgets the origin of `stem` once the file is done.
    static func remove(folder: DropFolder, stem: String) {
        unlink(Self.folder(folder) + "/" + stem + ".json")
    }

    /// Writes rows back as a new CSV file in `folder`, with their origin first (so the file is
    /// never taken without it): the header (when the rows had one), then each row as it was.
    /// - Parameters:
    ///   - rows: each row's text and its line in `file`.
    ///   - sequence: tells apart files written in the same millisecond.
    /// - Returns: the new file's name.
    static func writeBack(
        rows: [(text: String, line: Int)], header: [String]?, file: String, delimiter: Character, folder: DropFolder, sequence: Int
    ) throws -> String {
        let ext = (file as NSString).pathExtension
        let base = ext.isEmpty ? file : String(file.dropLast(ext.count + 1))
        let name = "\(base).redrive-\(WallClock.epochMilliseconds())-\(sequence)" + (ext.isEmpty ? "" : ".\(ext)")
        var text = ""
        var line = 1
        if let header {
            text += header.map { Self.field($0, delimiter: delimiter) }.joined(separator: String(delimiter)) + "\n"
            line = 2
        }
        var lines: [String: JSONValue] = [:]
        for row in rows {
            lines[String(line)] = .int(Int64(row.line))
            text += row.text + "\n"
            line += 1 + row.text.utf8.count(where: { $0 == UInt8(ascii: "\n") })
        }
        try FileManager.default.createDirectory(atPath: Self.folder(folder), withIntermediateDirectories: true)
        try Data(JSONWriter.string(["file": .string(file), "lines": .object(lines)]).utf8).write(to: URL(fileURLWithPath: Self.folder(folder) + "/" + name + ".json"))
        // Written under a dotted name and renamed in: the folder's scan never takes half a file.
        let temporary = folder.root + "/." + name + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, folder.root + "/" + name) == 0 else {
            throw DropFolderError(path: temporary, reason: "cannot move into the folder: \(String(cString: strerror(errno)))")
        }
        return name
    }

    /// A header field quoted when it has to be.
    private static func field(_ value: String, delimiter: Character) -> String {
        guard value.contains(delimiter) || value.contains("\"") || value.contains("\n") || value.contains("\r") else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
