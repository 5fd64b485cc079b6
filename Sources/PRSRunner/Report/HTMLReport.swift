import Foundation

/// The report as one self-contained HTML file: inline CSS, SVG charts drawn here, and a small
/// inline script for the item browser. No network, no external scripts or fonts.
public enum HTMLReport {
    public static func render(_ e: Evaluation, title: String) throws -> String {
        let colors = Dictionary(
            uniqueKeysWithValues: e.strategies.enumerated().map {
                ($1.label, SVGChart.palette[$0 % SVGChart.palette.count])
            })
        func curve(_ pick: (Evaluation.CurvePoint) -> Evaluation.Interval) -> [SVGChart.Series] {
            e.strategies.map { s in
                SVGChart.Series(
                    label: s.label, color: colors[s.label]!,
                    points: s.curve.map { p in
                        let i = pick(p)
                        return (Double(p.n), i.mean, i.low, i.high)
                    })
            }
        }
        var body = "<h1>\(HTML.escape(title))</h1>"
        body +=
            "<p class=\"lead\">Budget N = \(e.budget) scored responses per prompt; \(e.items.count) prompts finished "
            + "by every strategy. Bands and brackets are 95% bootstrap intervals over prompts.</p>"
        body += "<section class=\"charts\">"
        body += SVGChart.lines(
            curve { $0.best }, title: "Expected best reward at budget n", xLabel: "budget n", yLabel: "best reward")
        body += SVGChart.lines(
            curve { $0.top3 }, title: "Expected mean of the top-3 rewards", xLabel: "budget n", yLabel: "top-3 mean")
        body += SVGChart.histograms(
            e.strategies.map { ($0.label, colors[$0.label]!, $0.rewards) }, title: "Rewards of all scored responses")
        body += "</section>"
        for t in e.tables { body += table(t) }
        body += """
            <h2>Items</h2>
            <p>Pick a prompt to see each strategy's responses: for PRS the tree (first samples, the feedback on the \
            best of them, the refinements), for Rand and PRand the independent samples. The best answer of each is \
            marked.</p>
            <label for="item">Prompt </label><select id="item"></select>
            <div id="itemview"></div>
            """
        let data = try JSONEncoder().encode(ItemData(items: e.items, order: e.strategies.map(\.label), colors: colors))
        // Inside <script>, "</" would end the element: escape it as "<\/".
        let json = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, \
            initial-scale=1">
            <title>\(HTML.escape(title))</title>
            <style>\(css)</style></head>
            <body>\(body)
            <script type="application/json" id="data">\(json)</script>
            <script>\(script)</script>
            </body></html>
            """
    }

    struct ItemData: Encodable {
        var items: [Evaluation.ItemView]
        var order: [String]
        var colors: [String: String]
    }

    static func table(_ t: ReportTable) -> String {
        var s = "<h2>\(HTML.escape(t.title))</h2>"
        if let n = t.note { s += "<p class=\"note\">\(HTML.escape(n))</p>" }
        s += "<table><thead><tr>" + t.header.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for r in t.rows { s += "<tr>" + r.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>" }
        return s + "</tbody></table>"
    }

    static let css = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;padding:0 \
        1rem;color:#222}
        h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid \
        #ddd;padding-bottom:.2rem}
        .lead,.note{color:#555}.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{width:560px;max-width:100%;background:#fafafa;border:1px solid #eee;border-radius:6px}
        .chart .title{font-weight:600;font-size:13px}.chart .tick,.chart .legend,.chart \
        .axis{font-size:11px;fill:#444}.chart .grid{stroke:#e5e5e5}
        table{border-collapse:collapse;margin:.5rem 0;font-size:13px}th,td{border:1px solid #ddd;padding:.25rem \
        .5rem;text-align:right}th{background:#f3f3f3}
        td:first-child,th:first-child{text-align:left}select{font-size:14px;max-width:100%}
        #itemview .meta{margin:.8rem 0;color:#333}#itemview \
        .cols{display:flex;gap:1rem;align-items:flex-start;overflow-x:auto}
        .col{flex:1 1 0;min-width:260px}.col h3{font-size:14px;margin:.3rem 0}.node{border:1px solid \
        #ddd;border-left:4px solid #bbb;border-radius:4px;padding:.35rem .5rem;margin:.35rem \
        0;font-size:13px;white-space:pre-wrap}
        .node.feedback{background:#fff8e6;border-left-color:#e0a800}.node.refinement{margin-left:1.2rem}.node.best{box-shadow:0 0 0 2px #2ca02c inset}
        .node .head{font-weight:600;font-size:12px;color:#555;white-space:normal}
        """

    static let script = """
        (function(){
          var data = JSON.parse(document.getElementById('data').textContent);
          var select = document.getElementById('item'), view = document.getElementById('itemview');
          function el(tag, cls, text){ var e = document.createElement(tag); if(cls) e.className = cls; if(text !== \
        undefined) e.textContent = text; return e; }
          data.items.forEach(function(it, i){ var o = el('option', null, it.id + ' — ' + it.prompt.slice(0, 80)); \
        o.value = it.id; select.appendChild(o); });
          function show(id){
            var it = data.items.find(function(x){ return x.id === id; }) || data.items[0];
            if(!it){ view.textContent = 'No prompt was finished by every strategy.'; return; }
            select.value = it.id;
            view.innerHTML = '';
            view.setAttribute('data-item', it.id);
            var meta = el('div', 'meta');
            meta.appendChild(el('div', null, 'Prompt: ' + it.prompt));
            meta.appendChild(el('div', null, 'Preference: ' + (it.preference || '(none)') + (it.category ? '  [' + \
        it.category + ']' : '')));
            view.appendChild(meta);
            var cols = el('div', 'cols');
            data.order.forEach(function(label){
              var nodes = it.runs[label]; if(!nodes) return;
              var col = el('div', 'col'); var h = el('h3', null, label); h.style.color = data.colors[label]; \
        col.appendChild(h);
              nodes.forEach(function(n){
                var d = el('div', 'node ' + n.kind + (n.best ? ' best' : ''));
                var r = n.reward === null || n.reward === undefined ? (n.kind === 'feedback' ? 'feedback' : \
        'unscored') : 'reward ' + n.reward.toFixed(3);
                d.appendChild(el('div', 'head', '#' + n.id + ' ' + n.kind + ' · layer ' + n.layer + ' · ' + r + \
        (n.best ? ' · best' : '')));
                d.appendChild(document.createTextNode(n.text));
                col.appendChild(d);
              });
              cols.appendChild(col);
            });
            view.appendChild(cols);
          }
          select.addEventListener('change', function(){ show(select.value); history.replaceState(null, '', '#item=' + \
        encodeURIComponent(select.value)); });
          var m = /item=([^&]+)/.exec(location.hash);
          show(m ? decodeURIComponent(m[1]) : (data.items[0] && data.items[0].id));
        })();
        """
}
