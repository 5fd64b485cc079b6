import Foundation
import PRSCore

/// The report of a `prs loop` directory: per chain, the policy's held-out reward by iteration
/// with 95% intervals (the paper's Figure 5 in kind), the training data's size and reward, the
/// improving pairs, the loss curves, tokens and time per stage, and links to each iteration's
/// runs in the item browser.
public enum LoopReport {
    /// A page of one run (or an evaluation beside the starting policy's), linked from the report.
    public struct Link: Sendable {
        public var chain: String
        public var iteration: Int
        public var label: String
        public var href: String
        public init(chain: String, iteration: Int, label: String, href: String) {
            self.chain = chain
            self.iteration = iteration
            self.label = label
            self.href = href
        }
    }

    static func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
    static func ci(_ v: Double?, _ c: [Double]?) -> String {
        guard let v else { return "–" }
        guard let c, c.count == 2 else { return f(v) }
        return String(format: "%.3f [%.3f, %.3f]", v, c[0], c[1])
    }
    public static func gain(_ v: Double?, _ c: [Double]?) -> String {
        guard let v else { return "–" }
        guard let c, c.count == 2 else { return String(format: "%+.3f", v) }
        return String(format: "%+.3f [%+.3f, %+.3f]", v, c[0], c[1])
    }
    static func pct(_ v: Double?, _ c: [Double]? = nil) -> String {
        guard let v else { return "–" }
        guard let c, c.count == 2 else { return String(format: "%.0f%%", v * 100) }
        return String(format: "%.0f%% [%.0f, %.0f]", v * 100, c[0] * 100, c[1] * 100)
    }

    static func tables(_ s: LoopSummary) -> [ReportTable] {
        var reward: [[String]] = []
        var data: [[String]] = []
        var cost: [[String]] = []
        for chain in s.order {
            for e in s.chains[chain] ?? [] {
                reward.append([
                    chain, "\(e.iteration)", ci(e.evalMeanReward, e.evalMeanRewardCI),
                    e.iteration == 0 ? "–" : gain(e.gainVsBase, e.gainVsBaseCI),
                    ci(e.evalGreedyReward, e.evalGreedyRewardCI),
                    f(e.evalBestOfN), e.iteration == 0 ? "–" : pct(e.winRateVsBase, e.winRateVsBaseCI),
                    e.judgeWinRateVsBase.map { pct($0) } ?? "–",
                    e.eval.map { String(format: "%.0f", $0.meanWords) } ?? "–",
                ])
                guard e.iteration > 0 else { continue }
                let losses = e.trainLosses ?? []
                data.append([
                    chain, "\(e.iteration)", e.samplePrompts.map(String.init) ?? "–", f(e.sampleMeanBestReward),
                    e.sftExamples.map(String.init) ?? "–", f(e.selectedMeanReward),
                    e.improvingPairs.map(String.init) ?? "–",
                    e.refinementSuccess.map { "\($0.rateText); \($0.changeText)" } ?? "–",
                    e.refineExamples.map(String.init) ?? "–", e.dpoPairs.map(String.init) ?? "–", "\(e.trainExamples)",
                    losses.isEmpty ? "–" : "\(f(losses.first)) → \(f(losses.last))",
                ])
                func sec(_ k: String) -> String { e.stageSeconds[k].map { String(format: "%.0f", $0) } ?? "–" }
                cost.append([
                    chain, "\(e.iteration)", e.sampleTokens.map(String.init) ?? "–",
                    e.evalTokens.map(String.init) ?? "–",
                    sec("sample"), sec("select"), sec("train"), sec("evaluate"), String(format: "%.0f", e.seconds),
                ])
            }
        }
        var out = [
            ReportTable(
                title: "Held-out reward of the policy by iteration",
                note:
                    "The policy's own answers, not best-of-N: the mean over held-out prompts of each prompt's mean "
                    + "sample reward, its gain over iteration 0 (prompt by prompt, paired), the greedy answer's "
                    + "reward, the expected best of the samples, and the share of prompts where the policy beats the "
                    + "starting policy (iteration 0; by the greedy answers' rewards). Brackets: 95% bootstrap "
                    + "intervals over prompts.",
                header: [
                    "chain", "iteration", "mean reward", "gain vs iteration 0", "greedy reward", "best of samples",
                    "win vs iteration 0", "judge win", "words",
                ], rows: reward),
            ReportTable(
                title: "Training data by iteration",
                note:
                    "Sampled with the previous iteration's policy: the prompts, their trees' mean best reward, the "
                    + "selected SFT examples and their mean reward, improving pairs (refinements that beat their "
                    + "draft), refinement success (the share of refinements beating their draft and the mean reward "
                    + "change, 95% intervals over prompts) and the refinement examples made of them, preference pairs, "
                    + "and the loss over training (first → last step).",
                header: [
                    "chain", "iteration", "prompts", "best reward", "SFT examples", "selected reward",
                    "improving pairs", "refinement success", "refine examples", "DPO pairs", "trained on", "loss",
                ], rows: data),
            ReportTable(
                title: "Tokens and time per stage",
                note:
                    "Generated tokens while sampling and evaluating; seconds per stage, summed over every process "
                    + "that worked on it.",
                header: [
                    "chain", "iteration", "sample tokens", "eval tokens", "sample s", "select s", "train s",
                    "evaluate s", "total s",
                ], rows: cost),
        ]
        let searched = s.order.flatMap { c in
            (s.chains[c] ?? []).compactMap { e in e.eval?.search.map { (c, e.iteration, $0) } }
        }
        if !searched.isEmpty {
            out.append(
                ReportTable(
                    title: "PRS against PRand at equal budget, held-out prompts",
                    note:
                        "Each iteration's policy samples the held-out prompts with PRS (N/2 + N/2) and with PRand at "
                        + "the same budget N: the mean best reward of each, PRS minus PRand prompt by prompt (paired), "
                        + "and PRS's refinement success there. Brackets: 95% bootstrap intervals over prompts.",
                    header: [
                        "chain", "iteration", "N", "PRS best", "PRand best", "PRS − PRand", "refinements beating draft",
                        "reward change",
                    ],
                    rows: searched.map { c, k, x in
                        [
                            c, "\(k)", "\(x.budget)", ci(x.prs.mean, [x.prs.low, x.prs.high]),
                            ci(x.prand.mean, [x.prand.low, x.prand.high]),
                            gain(x.difference.mean, [x.difference.low, x.difference.high]),
                            x.refinement?.rateText ?? "–", x.refinement?.changeText ?? "–",
                        ]
                    }))
        }
        // Breakdowns of the last iteration of each chain against the starting policy.
        var categories: Set<String> = []
        var kinds: Set<String> = []
        for chain in s.order {
            for e in s.chains[chain] ?? [] {
                categories.formUnion(e.eval?.byCategory.keys ?? [:].keys)
                kinds.formUnion(e.eval?.byConstraint.keys ?? [:].keys)
            }
        }
        let lasts: [(String, LoopSummary.Entry)] =
            [("iteration 0", s.order.compactMap { s.chains[$0]?.first }.first)].compactMap { l, e in e.map { (l, $0) } }
            + s.order.compactMap { c in
                s.chains[c]?.last.flatMap { $0.iteration > 0 ? ("\(c) \($0.iteration)", $0) : nil }
            }
        if !lasts.isEmpty {
            out.append(
                ReportTable(
                    title: "Mean reward by preference category",
                    note: "The starting policy and each chain's last iteration.",
                    header: ["category"] + lasts.map(\.0),
                    rows: categories.sorted().map { c in
                        [c]
                            + lasts.map {
                                ci($0.1.eval?.byCategory[c]?.mean, $0.1.eval?.byCategory[c].map { [$0.low, $0.high] })
                            }
                    }))
            out.append(
                ReportTable(
                    title: "Samples following each constraint kind",
                    note:
                        "Share of the evaluation samples that follow the constraint, averaged over the prompts that "
                        + "have it, with a 95% interval over those prompts, and the samples checked.",
                    header: ["constraint"] + lasts.map(\.0),
                    rows: kinds.sorted().map { k in
                        [k]
                            + lasts.map { e in
                                e.1.eval?.byConstraint[k].map { c in
                                    (c.rate.map {
                                        String(
                                            format: "%.0f%% [%.0f, %.0f]", $0.mean * 100, $0.low * 100, $0.high * 100)
                                    } ?? "–") + " of \(c.total)"
                                } ?? "–"
                            }
                    }))
        }
        return out
    }

    public static func markdown(_ s: LoopSummary, title: String) -> String {
        var out =
            "# \(title)\n\n\(s.order.count) chains × \(s.iterations) iterations; \(s.stagesDone) of \(s.stages) "
            + "stages done.\n"
        for t in tables(s) { out += MarkdownReport.table(t) }
        return out
    }

    public static func html(_ s: LoopSummary, title: String, links: [Link]) -> String {
        let colors = Dictionary(
            uniqueKeysWithValues: s.order.enumerated().map { ($1, SVGChart.palette[$0 % SVGChart.palette.count]) })
        func series(_ pick: (LoopSummary.Entry) -> (Double, Double, Double)?) -> [SVGChart.Series] {
            s.order.map { c in
                SVGChart.Series(
                    label: c, color: colors[c]!,
                    points: (s.chains[c] ?? []).compactMap { e in
                        pick(e).map { (Double(e.iteration), $0.0, $0.1, $0.2) }
                    })
            }
        }
        func triple(_ v: Double?, _ c: [Double]?) -> (Double, Double, Double)? {
            guard let v else { return nil }
            return (v, c?.first ?? v, c?.last ?? v)
        }
        var body = "<h1>\(HTML.escape(title))</h1>"
        body +=
            "<p class=\"lead\">\(s.order.count) chains × \(s.iterations) iterations; \(s.stagesDone) of \(s.stages) "
            + "stages done. Iteration 0 is the starting policy. Bands are 95% bootstrap intervals over held-out "
            + "prompts.</p>"
        body += "<section class=\"charts\">"
        body += SVGChart.lines(
            series { triple($0.evalMeanReward, $0.evalMeanRewardCI) }, title: "Held-out mean reward of the policy",
            xLabel: "iteration", yLabel: "mean reward")
        body += SVGChart.lines(
            series { triple($0.evalGreedyReward, $0.evalGreedyRewardCI) },
            title: "Held-out reward of the greedy answer", xLabel: "iteration", yLabel: "greedy reward")
        body += SVGChart.lines(
            series { $0.iteration == 0 ? nil : $0.selectedMeanReward.map { ($0, $0, $0) } },
            title: "Mean reward of the selected training data", xLabel: "iteration", yLabel: "reward")
        var lossSeries: [SVGChart.Series] = []
        for (ci, c) in s.order.enumerated() {
            for e in s.chains[c] ?? [] where !(e.trainLosses ?? []).isEmpty {
                let color = SVGChart.palette[(ci + (e.iteration - 1) * s.order.count) % SVGChart.palette.count]
                lossSeries.append(
                    SVGChart.Series(
                        label: "\(c) \(e.iteration)", color: color,
                        points: e.trainLosses!.enumerated().map {
                            (Double($0.offset + 1), $0.element, $0.element, $0.element)
                        }))
            }
        }
        body += SVGChart.lines(lossSeries, title: "Training loss by step", xLabel: "optimizer step", yLabel: "loss")
        body += "</section>"
        for t in tables(s) { body += HTMLReport.table(t) }
        if !links.isEmpty {
            body +=
                "<h2>Runs</h2><p class=\"note\">Each iteration's sampled trees and its evaluation beside the "
                + "starting policy's, in the item browser.</p><ul>"
            var groups: [String: [Link]] = [:]
            for l in links { groups["\(l.chain)|\(l.iteration)", default: []].append(l) }
            for key in groups.keys.sorted(by: { a, b in
                let x = groups[a]![0]
                let y = groups[b]![0]
                return (s.order.firstIndex(of: x.chain) ?? -1, x.iteration) < (
                    s.order.firstIndex(of: y.chain) ?? -1, y.iteration
                )
            }) {
                let g = groups[key]!
                let name = g[0].iteration == 0 ? "starting policy" : "\(g[0].chain) iteration \(g[0].iteration)"
                body +=
                    "<li>\(HTML.escape(name)): "
                    + g.map { "<a href=\"\(HTML.escape($0.href))\">\(HTML.escape($0.label))</a>" }.joined(
                        separator: " · ") + "</li>"
            }
            body += "</ul>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, \
            initial-scale=1">
            <title>\(HTML.escape(title))</title>
            <style>\(HTMLReport.css)</style></head>
            <body>\(body)
            </body></html>
            """
    }
}
