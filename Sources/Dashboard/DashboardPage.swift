import Foundation
import SkyLib
import RouteModel
import RegistryKit

/// The dashboard's HTML: one server-rendered page. A few lines of JavaScript fetch the live
/// part again every second (`?part=live`) and swap it in, so there is one renderer (this
/// file) and no build step.
enum DashboardPage {
    /// The whole page: the style, the live part as it is now, and the few lines of script that
    /// fetch the live part again every second. Rendered on the server so the page shows data before
    /// any script runs (and in the Chromium test, without waiting for one).
    static func page(_ view: ClusterView) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Skynet dashboard</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f7f8fa; }
        h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
        .meta { color: #5b6472; } .bad { color: #b3261e; font-weight: 600; } .ok { color: #1e7b34; }
        table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
        th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e6e8ec; white-space: nowrap; }
        th { background: #eef1f5; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.step td:first-child { padding-left: 1.6rem; color: #3b4452; }
        svg#topology { background: #fff; box-shadow: 0 1px 2px #0001; max-width: 1020px; }
        #topology .box rect { fill: #fff; stroke: #9aa4b2; stroke-width: 1.2; }
        #topology .box.ready rect { fill: #eaf6ed; stroke: #1e7b34; } #topology .box.dead rect { fill: #fbe3e1; stroke: #b3261e; stroke-width: 2; }
        #topology .box.draining rect, #topology .box.starting rect { fill: #fff4e0; stroke: #8a5a00; } #topology .box.unregistered rect { fill: #eee; stroke: #888; }
        #topology .box.failing rect { stroke: #b3261e; } #topology .box.initiator rect, #topology .box.service rect { fill: #eef1f5; stroke: #5b6472; }
        #topology text { font: 12px system-ui, sans-serif; fill: #1d2430; } #topology text.detail { font-size: 11px; fill: #5b6472; }
        #topology text.col { font-weight: 600; fill: #5b6472; } #topology .edge path { fill: none; stroke: #9aa4b2; stroke-width: 1.5; }
        #topology .edge.bad path { stroke: #b3261e; } #topology .edge text { font-size: 11px; fill: #3b4452; }
        .spark .frame { fill: #fff; stroke: #e6e8ec; } .spark polyline { fill: none; stroke-width: 1.5; } .spark .rate { stroke: #2f6fdf; }
        .spark .p50 { stroke: #1e7b34; } .spark .p99 { stroke: #8a5a00; } .spark .errors { stroke: #b3261e; } .spark text { font-size: 10px; fill: #5b6472; }
        .bar { display: inline-block; width: 16rem; height: .8rem; background: #e6e8ec; border-radius: .4rem; overflow: hidden; vertical-align: middle; }
        .bar > .fill { display: block; height: 100%; background: #2f6fdf; transition: width .8s linear; }
        .status-ready { color: #1e7b34; } .status-expired { color: #b3261e; } .status-draining, .status-starting { color: #8a5a00; }
        </style>
        </head>
        <body>
        <h1>Skynet</h1>
        <p class="meta"><a href="drills">Fault drills</a></p>
        <div id="live">\(Self.live(view))</div>
        <script>
        // Swap in the freshly rendered live part every second; keep the old one if a fetch fails.
        async function refresh() {
          try {
            const answer = await fetch('?part=live', { cache: 'no-store' });
            if (answer.ok) document.getElementById('live').innerHTML = await answer.text();
          } catch (e) {}
        }
        setInterval(refresh, 1000);
        // The redrive button: ask, then show the new counts at once.
        async function redrive(route) {
          try {
            await fetch('failed/redrive?route=' + encodeURIComponent(route), { method: 'POST', cache: 'no-store', headers: { 'Skynet-Action': 'redrive' } });
          } catch (e) {}
          refresh();
        }
        </script>
        </body>
        </html>
        """
    }

    /// The part that changes: topology, routes, events.
    static func live(_ view: ClusterView) -> String {
        var html = "<p class=\"meta\">registry \(Self.escape(view.registry)) · updated <span id=\"updated\">\(Self.time(view.updatedAt))</span>"
        html += " · \(view.nodes.count) nodes · rates over the last \(String(format: "%.0f", view.window)) s</p>"
        if let error = view.registryError {
            html += "<p class=\"bad\">registry unreachable: \(Self.escape(error)) (showing the last nodes known)</p>"
        }
        for notice in view.nodes.compactMap({ $0.reaperHoldingBack(at: view.updatedAt) }) {
            html += "<p class=\"bad\" id=\"reaper-holding-back\">\(Self.escape(notice))</p>"
        }
        for breaker in view.breakers {
            html += "<p class=\"bad\" data-breaker=\"\(Self.escape(breaker.service))\">circuit \(breaker.state) for service \(Self.escape(breaker.service)) "
            html += "on router \(Self.escape(breaker.router.address)): calls fail fast until a probe succeeds</p>"
        }
        for (router, problem) in view.routeProblems {
            html += "<p class=\"bad\" data-route-problem=\"\(Self.escape(problem.error.file))\">route file \(Self.escape(problem.error.description)) "
            html += "refused on router \(Self.escape(router)): "
            html += problem.serving.map { "revision \($0) of \(Self.escape(problem.route ?? "its route")) (the last good one) serves meanwhile</p>" } ?? "no revision of it serves</p>"
        }
        for router in view.routers where router.error != nil {
            html += "<p class=\"bad\">router \(Self.escape(router.address)) did not answer /debug/stats: \(Self.escape(router.error ?? ""))</p>"
        }

        html += "<h2>Topology</h2>" + TopologyDrawing.svg(view)
        let charts = RouteCharts.html(view, span: ClusterWatcher.chartSpan)
        if !charts.isEmpty { html += "<h2>Routes over time</h2>" + charts }
        html += Self.progress(view.progress)

        html += "<h2>Nodes</h2><table id=\"nodes\"><tr><th>Kind</th><th>Service</th><th>Version</th><th>Region</th><th>Host</th>"
        html += "<th>Address</th><th>Instance</th><th>Status</th><th>Heartbeat</th><th>Up</th></tr>"
        for node in view.nodes {
            html += "<tr class=\"node\" data-node=\"\(Self.escape(node.id))\"><td>\(node.kind.rawValue)</td><td>\(Self.escape(node.service))</td>"
            html += "<td>\(Self.escape(node.version))</td><td>\(Self.escape(node.region))</td><td>\(Self.escape(node.host))</td>"
            html += "<td>\(Self.escape(node.address))</td><td>\(Self.escape(Identifiers.short(node.id)))</td>"
            let status = node.shownStatus(at: view.updatedAt)
            html += "<td class=\"status-\(status)\">\(status)</td>"
            html += "<td class=\"num\">\(String(format: "%.1f s ago", view.updatedAt.timeIntervalSince(node.heartbeatAt)))</td>"
            html += "<td class=\"num\">\(Self.age(view.updatedAt.timeIntervalSince(node.startedAt)))</td></tr>"
        }
        html += "</table>"

        html += "<h2>Routes</h2><table id=\"routes\"><tr><th>Route / step</th><th>Rate</th><th>Errors</th><th>p50</th><th>p99</th><th>In flight / retries</th></tr>"
        if view.routes.isEmpty { html += "<tr><td colspan=\"6\" class=\"meta\">no router has served a route yet</td></tr>" }
        for route in view.routes {
            html += "<tr class=\"route\" data-route=\"\(Self.escape(route.route))\"><td><b>\(Self.escape(route.route))</b></td>\(Self.cells(route.rates))"
            html += "<td class=\"num\">\(route.inflight) in flight</td></tr>"
            for (index, step) in route.steps.enumerated() {
                html += "<tr class=\"step\"><td>\(index + 1). \(Self.escape(step.service))</td>\(Self.cells(step.rates))"
                html += "<td class=\"num\">\(String(format: "%.1f", step.retriesPerSecond)) retries/s</td></tr>"
            }
        }
        html += "</table>"

        html += "<h2>Failed work</h2><table id=\"failed\"><tr><th>Route</th><th>Failed</th><th>Being redriven</th><th>From</th><th></th></tr>"
        if view.failedWork.isEmpty { html += "<tr><td colspan=\"5\" class=\"meta\">none waiting</td></tr>" }
        for row in view.failedWork {
            let route = Self.escape(row.route)
            html += "<tr class=\"failed\" data-failed-route=\"\(route)\"><td>\(route)</td><td class=\"num failed-count\">\(row.failed)</td>"
            html += "<td class=\"num\">\(row.redriving)</td><td>\(Self.escape(row.sources.joined(separator: ", ")))</td><td>"
            if row.failed > 0 {
                html += "<button data-redrive=\"\(route)\" onclick=\"redrive(this.dataset.redrive)\">Redrive \(row.failed)</button>"
            }
            html += "</td></tr>"
        }
        html += "</table>"

        html += "<h2>Totals since the start</h2><table id=\"totals\"><tr><th>Route</th><th>OK</th><th>Failed</th><th>Nodes</th></tr>"
        if view.totals.isEmpty { html += "<tr><td colspan=\"4\" class=\"meta\">nothing counted yet</td></tr>" }
        for total in view.totals {
            html += "<tr class=\"total\" data-total-route=\"\(Self.escape(total.route))\"><td>\(Self.escape(total.route))</td>"
            html += "<td class=\"num\">\(total.ok)</td><td class=\"num\">\(total.failed)</td><td class=\"num\">\(total.nodes)</td></tr>"
        }
        html += "</table>"

        html += "<h2>Recent failures</h2><table id=\"failures\"><tr><th>When</th><th>Route</th><th>Step</th><th>Code</th><th>Message</th><th>Trace</th></tr>"
        if view.failures.isEmpty { html += "<tr><td colspan=\"6\" class=\"meta\">none</td></tr>" }
        for failure in view.failures {
            let step = failure.step.map { "\($0). \(failure.service ?? "")" } ?? (failure.service ?? "–")
            html += "<tr class=\"failure\"><td>\(Self.time(failure.at))</td><td>\(Self.escape(failure.route))</td><td>\(Self.escape(step))</td>"
            html += "<td class=\"bad\">\(Self.escape(failure.code))</td><td>\(Self.escape(failure.message))</td><td><code>\(Self.escape(failure.traceID))</code></td></tr>"
        }
        html += "</table>"

        html += "<h2>Recent events</h2><table id=\"events\"><tr><th>When</th><th>Kind</th><th>Service</th><th>Instance</th><th>Message</th></tr>"
        if view.events.isEmpty { html += "<tr><td colspan=\"5\" class=\"meta\">none</td></tr>" }
        for event in view.events {
            html += "<tr><td>\(Self.time(event.at))</td><td class=\"\(event.kind == "reaped" ? "bad" : "")\">\(Self.escape(event.kind))</td>"
            html += "<td>\(Self.escape(event.service))</td><td>\(Self.escape(Identifiers.short(event.nodeID)))</td><td>\(Self.escape(event.message))</td></tr>"
        }
        html += "</table>"
        return html
    }

    /// Long work in flight, a bar each: bytes of a CSV file, files of a drop folder's backlog.
    static func progress(_ items: [ProgressBoard.Snapshot]) -> String {
        var html = "<h2>In flight</h2><table id=\"progress\"><tr><th>Route</th><th>File or folder</th><th>Progress</th><th>Done</th><th>Rate</th><th>Left</th></tr>"
        if items.isEmpty { html += "<tr><td colspan=\"6\" class=\"meta\">no CSV file or drop-folder backlog in flight</td></tr>" }
        for item in items {
            let percent = String(format: "%.1f", item.fraction * 100)
            let done = item.total.map { "\(item.done) of \($0) \(item.unit)" } ?? "\(item.done) \(item.unit)"
            let bytes = item.bytesTotal.map { " · \(item.bytesDone ?? 0) of \($0) bytes" } ?? ""
            html += "<tr class=\"progress\" data-kind=\"\(item.kind.rawValue)\" data-name=\"\(Self.escape(item.name))\" data-fraction=\"\(String(format: "%.4f", item.fraction))\">"
            html += "<td>\(Self.escape(item.route))</td><td>\(Self.escape(item.name)) (\(item.kind.rawValue))</td>"
            html += "<td><span class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"\(percent)\">"
            html += "<span class=\"fill\" style=\"width: \(percent)%\"></span></span> \(percent)%</td>"
            html += "<td class=\"num\">\(Self.escape(done + bytes))</td><td class=\"num\">\(String(format: "%.1f", item.rate)) \(item.unit)/s</td>"
            html += "<td class=\"num\">\(item.secondsLeft.map { Self.age($0) } ?? "–")</td></tr>"
        }
        return html + "</table>"
    }

    /// A rates row's cells; a non-zero error rate is marked `bad` (red).
    private static func cells(_ rates: ClusterView.Rates) -> String {
        let errors = String(format: "%.1f%%", rates.errorRate * 100)
        return "<td class=\"num\">\(String(format: "%.1f/s", rates.perSecond))</td>"
            + "<td class=\"num \(rates.errorRate > 0 ? "bad" : "")\">\(errors)</td>"
            + "<td class=\"num\">\(Self.milliseconds(rates.p50Milliseconds))</td><td class=\"num\">\(Self.milliseconds(rates.p99Milliseconds))</td>"
    }

    /// Two decimals under 10 ms (where they still mean something), whole milliseconds above; an en
    /// dash when there is no sample.
    private static func milliseconds(_ value: Double?) -> String {
        guard let value else { return "–" }
        return value < 10 ? String(format: "%.2f ms", value) : String(format: "%.0f ms", value)
    }

    /// Seconds, minutes or hours, whichever reads without a calculator.
    private static func age(_ seconds: Double) -> String {
        switch seconds {
        case ..<120: return String(format: "%.0f s", seconds)
        case ..<7200: return String(format: "%.0f min", seconds / 60)
        default: return String(format: "%.1f h", seconds / 3600)
        }
    }

    /// A UTC time of day: the page is read on machines in any zone, and the logs it is compared
    /// with are in UTC.
    private static func time(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970)
        let day = seconds % 86400
        return String(format: "%02d:%02d:%02d UTC", day / 3600, (day % 3600) / 60, day % 60)
    }

    /// Escapes text for HTML, quotes included (it goes into attributes too): every name on the page
    /// (routes, services, hosts, error messages) comes from the cluster and may contain anything.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
