import Foundation
import RegistryKit
import SkyLib

/// `GET /drills`: the fault drills recorded in the registry's event log (`sky drill` records its
/// report there as an event of kind `drill`), newest first: every input accounted for per
/// source, the faults as applied, and latency per phase.
///
/// The page reads the report's JSON by its keys (those `sky drill --json` prints), so the
/// dashboard does not depend on the drill's module.
enum DrillsPage {
    /// How many events are read to find the drills among them.
    static let eventsRead = 1000

    /// The reports among `events`, newest first.
    static func reports(in events: [RegistryEvent]) -> [(at: Date, report: JSONValue)] {
        events.filter { $0.kind == "drill" }.compactMap { event in
            (try? JSONParser.parse(event.message)).map { (event.at, $0) }
        }
    }

    /// The page.
    static func page(_ reports: [(at: Date, report: JSONValue)]) -> String {
        let escape = DashboardPage.escape
        func text(_ value: JSONValue?) -> String {
            guard let value else { return "" }
            if let string = value.stringValue { return string }
            if case .double(let number) = value { return String(format: "%.1f", number) }
            if case .null = value { return "-" }
            return JSONWriter.string(value)
        }
        func counts(_ value: JSONValue?) -> String {
            let map = value?.objectValue ?? [:]
            return map.isEmpty ? "0" : map.sorted { $0.key < $1.key }.map { "\(text($0.value)) \($0.key)" }.joined(separator: ", ")
        }
        let formatter = ISO8601DateFormatter()
        var body = ""
        if reports.isEmpty { body = "<p class=\"meta\">No drill recorded in this registry yet: run <code>sky drill --route NAME --faults …</code>.</p>" }
        for (at, report) in reports {
            let passed = report["passed"]?.boolValue == true
            body += "<h2>\(escape(text(report["id"]))) · route \(escape(text(report["route"]))) · \(escape(formatter.string(from: at)))</h2>\n"
            body += "<p><span class=\"\(passed ? "ok" : "bad")\">\(passed ? "PASSED: every input is accounted for" : "FAILED: " + escape((report["problems"]?.arrayValue ?? []).map { text($0) }.joined(separator: "; ")))</span>"
            body += " <span class=\"meta\">\(escape(text(report["duration"]))) s of load; faults: \(escape((report["faults"]?.arrayValue ?? []).map { text($0) }.joined(separator: ", ")))</span></p>\n"
            body += "<table><tr><th>Source</th><th>Sent</th><th>Answered</th><th>Failed</th><th>Parked</th><th>Missing</th><th>Duplicated</th></tr>\n"
            for source in report["sources"]?.arrayValue ?? [] {
                let missing = source["missingCount"]?.intValue ?? 0
                body += "<tr><td>\(escape(text(source["source"])))</td><td class=\"num\">\(text(source["sent"]))</td><td class=\"num\">\(text(source["answered"]))</td>"
                body += "<td>\(escape(counts(source["failed"])))</td><td>\(escape(counts(source["parked"])))</td>"
                body += "<td class=\"\(missing > 0 ? "bad" : "")\">\(escape(counts(source["missing"])))</td><td class=\"num\">\(text(source["duplicated"]))</td></tr>\n"
            }
            body += "</table>\n<table><tr><th>Fault</th><th>At</th><th>Until</th><th>What was done</th></tr>\n"
            for event in report["events"]?.arrayValue ?? [] {
                body += "<tr><td>\(escape(text(event["fault"]))) #\(text(event["occurrence"]))</td><td class=\"num\">\(text(event["start"])) s</td><td class=\"num\">\(text(event["end"])) s</td>"
                body += "<td>\(event["applied"]?.boolValue == false ? "skipped: " : "")\(escape(text(event["detail"])))</td></tr>\n"
            }
            body += "</table>\n<table><tr><th>Phase</th><th>From</th><th>To</th><th>Sent</th><th>Settled</th><th>Missing</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>\n"
            for phase in report["phases"]?.arrayValue ?? [] {
                body += "<tr><td>\(escape(text(phase["name"])))</td><td class=\"num\">\(text(phase["from"]))</td><td class=\"num\">\(text(phase["to"]))</td>"
                body += "<td class=\"num\">\(text(phase["sent"]))</td><td class=\"num\">\(text(phase["settled"]))</td><td class=\"num\">\(text(phase["missing"]))</td>"
                body += "<td class=\"num\">\(text(phase["p50Ms"]))</td><td class=\"num\">\(text(phase["p99Ms"]))</td><td class=\"num\">\(text(phase["maxMs"]))</td></tr>\n"
            }
            body += "</table>\n"
        }
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Skynet drills</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f7f8fa; }
            h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
            .meta { color: #5b6472; } .bad { color: #b3261e; font-weight: 600; } .ok { color: #1e7b34; font-weight: 600; }
            table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; margin: .4rem 0; }
            th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e6e8ec; }
            th { background: #eef1f5; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
            </style>
            </head>
            <body>
            <h1>Skynet · fault drills</h1>
            <p class="meta"><a href="./">← the cluster</a> · newest first, as <code>sky drill</code> recorded them</p>
            \(body)
            </body>
            </html>
            """
    }
}
