import Foundation

/// Small SVG charts drawn as text, so a report needs no script or library to show them.
enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

    struct Series {
        var label: String
        var color: String
        /// (x, y, low, high)
        var points: [(Double, Double, Double, Double)]
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Lines with shaded confidence bands, axes, ticks and a legend.
    static func lines(
        _ series: [Series], title: String, xLabel: String, yLabel: String, width: Double = 560, height: Double = 320
    ) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "<p>no data</p>" }
        let xs = all.map(\.0)
        let ys = all.flatMap { [$0.2, $0.3, $0.1] }
        let (x0, x1) = (xs.min()!, max(xs.max()!, xs.min()! + 1))
        var (y0, y1) = (ys.min()!, ys.max()!)
        if y1 - y0 < 1e-9 {
            y0 -= 0.5
            y1 += 0.5
        }
        let pad = (y1 - y0) * 0.08
        y0 -= pad
        y1 += pad
        let left = 56.0
        let right = 150.0
        let top = 28.0
        let bottom = 44.0
        let w = width - left - right
        let h = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * w }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * h }
        var s =
            #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \#(f(width)) \#(f(height))" role="img" aria-label="\#(HTML.escape(title))">"#
        s += #"<text x="\#(f(left))" y="18" class="title">\#(HTML.escape(title))</text>"#
        for k in 0...4 {
            let y = y0 + (y1 - y0) * Double(k) / 4
            s += #"<line x1="\#(f(left))" x2="\#(f(left + w))" y1="\#(f(py(y)))" y2="\#(f(py(y)))" class="grid"/>"#
            s +=
                #"<text x="\#(f(left - 6))" y="\#(f(py(y) + 4))" class="tick" text-anchor="end">\#(String(format: "%.2f", y))</text>"#
        }
        for x in Set(xs).sorted() {
            s += #"<text x="\#(f(px(x)))" y="\#(f(top + h + 16))" class="tick" text-anchor="middle">\#(Int(x))</text>"#
        }
        s +=
            #"<text x="\#(f(left + w / 2))" y="\#(f(height - 6))" class="axis" text-anchor="middle">\#(HTML.escape(xLabel))</text>"#
        s +=
            #"<text transform="translate(14 \#(f(top + h / 2))) rotate(-90)" class="axis" text-anchor="middle">\#(HTML.escape(yLabel))</text>"#
        for (i, se) in series.enumerated() where !se.points.isEmpty {
            let upper = se.points.map { "\(f(px($0.0))),\(f(py($0.3)))" }
            let lower = se.points.reversed().map { "\(f(px($0.0))),\(f(py($0.2)))" }
            s +=
                #"<polygon points="\#((upper + lower).joined(separator: " "))" fill="\#(se.color)" opacity="0.15" class="band"/>"#
            s +=
                #"<polyline points="\#(se.points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " "))" fill="none" stroke="\#(se.color)" stroke-width="2" class="series"/>"#
            for p in se.points { s += #"<circle cx="\#(f(px(p.0)))" cy="\#(f(py(p.1)))" r="3" fill="\#(se.color)"/>"# }
            let ly = top + 12 + Double(i) * 18
            s += #"<rect x="\#(f(left + w + 14))" y="\#(f(ly - 9))" width="12" height="12" fill="\#(se.color)"/>"#
            s += #"<text x="\#(f(left + w + 32))" y="\#(f(ly + 1))" class="legend">\#(HTML.escape(se.label))</text>"#
        }
        return s + "</svg>"
    }

    /// One histogram per series, side by side in one chart, sharing the value range.
    static func histograms(
        _ series: [(label: String, color: String, values: [Double])], title: String, bins: Int = 10,
        width: Double = 560, height: Double = 320
    ) -> String {
        let all = series.flatMap(\.values)
        guard let lo = all.min(), let hi0 = all.max() else { return "<p>no data</p>" }
        let hi = hi0 > lo ? hi0 : lo + 1
        let left = 56.0
        let right = 150.0
        let top = 28.0
        let bottom = 44.0
        let w = width - left - right
        let h = height - top - bottom
        var counts: [[Double]] = []
        for se in series {
            var c = [Double](repeating: 0, count: bins)
            for v in se.values { c[min(bins - 1, Int((v - lo) / (hi - lo) * Double(bins)))] += 1 }
            counts.append(c.map { se.values.isEmpty ? 0 : $0 / Double(se.values.count) })
        }
        let ymax = max(counts.flatMap { $0 }.max() ?? 1, 1e-9)
        let slot = w / Double(bins)
        let bar = slot / Double(max(1, series.count)) * 0.9
        var s =
            #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \#(f(width)) \#(f(height))" role="img" aria-label="\#(HTML.escape(title))">"#
        s += #"<text x="\#(f(left))" y="18" class="title">\#(HTML.escape(title))</text>"#
        for k in 0...4 {
            let y = top + h - h * Double(k) / 4
            s += #"<line x1="\#(f(left))" x2="\#(f(left + w))" y1="\#(f(y))" y2="\#(f(y))" class="grid"/>"#
            s +=
                #"<text x="\#(f(left - 6))" y="\#(f(y + 4))" class="tick" text-anchor="end">\#(String(format: "%.0f%%", ymax * Double(k) / 4 * 100))</text>"#
        }
        for b in stride(from: 0, through: bins, by: max(1, bins / 5)) {
            let x = left + Double(b) * slot
            s +=
                #"<text x="\#(f(x))" y="\#(f(top + h + 16))" class="tick" text-anchor="middle">\#(String(format: "%.2f", lo + (hi - lo) * Double(b) / Double(bins)))</text>"#
        }
        s += #"<text x="\#(f(left + w / 2))" y="\#(f(height - 6))" class="axis" text-anchor="middle">reward</text>"#
        for (i, se) in series.enumerated() {
            for (b, c) in counts[i].enumerated() where c > 0 {
                let bh = c / ymax * h
                s +=
                    #"<rect class="bar" x="\#(f(left + Double(b) * slot + Double(i) * bar))" y="\#(f(top + h - bh))" width="\#(f(bar))" height="\#(f(bh))" fill="\#(se.color)"><title>\#(HTML.escape(se.label)): \#(String(format: "%.0f%%", c * 100))</title></rect>"#
            }
            let ly = top + 12 + Double(i) * 18
            s += #"<rect x="\#(f(left + w + 14))" y="\#(f(ly - 9))" width="12" height="12" fill="\#(se.color)"/>"#
            s += #"<text x="\#(f(left + w + 32))" y="\#(f(ly + 1))" class="legend">\#(HTML.escape(se.label))</text>"#
        }
        return s + "</svg>"
    }
}

enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
