import Foundation

/// Plain text tables for terminal output.
public enum Table {
    /// Columns padded to their widest cell and two spaces apart, trailing blanks trimmed: it reads
    /// in a terminal and greps line by line (no box drawing to strip).
    public static func render(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
