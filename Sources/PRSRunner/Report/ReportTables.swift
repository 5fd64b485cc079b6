import Foundation

/// The report's tables as rows of text, shared by the HTML and Markdown renderings so both
/// show the same numbers.
struct ReportTable {
    var title: String
    var note: String?
    var header: [String]
    var rows: [[String]]
}

extension Evaluation {
    static func pct(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
    static func num(_ v: Double) -> String { String(format: "%.3f", v) }
    static func ci(_ i: Interval) -> String { String(format: "%.3f [%.3f, %.3f]", i.mean, i.low, i.high) }
    static func ciPct(_ i: Interval) -> String {
        String(format: "%.1f%% [%.1f, %.1f]", i.mean * 100, i.low * 100, i.high * 100)
    }

    /// The budgets shown in the headline table: 1, 2, 4, 8, … up to the budget, and the budget itself.
    var headlineBudgets: [Int] {
        var ns: [Int] = []
        var n = 1
        while n <= budget {
            ns.append(n)
            n *= 2
        }
        if ns.last != budget { ns.append(budget) }
        return ns
    }

    var tables: [ReportTable] {
        var out: [ReportTable] = []
        out.append(
            ReportTable(
                title: "Mean best reward at budget N",
                note: "Mean over prompts, with 95% bootstrap intervals over prompts.",
                header: ["strategy", "prompts"] + headlineBudgets.map { "N=\($0)" },
                rows: strategies.map { s in
                    [s.label, "\(s.prompts)"]
                        + headlineBudgets.map { n in s.curve.first { $0.n == n }.map { Self.ci($0.best) } ?? "—" }
                }))
        out.append(
            ReportTable(
                title: "Mean of the top-3 rewards at budget N", note: nil,
                header: ["strategy"] + headlineBudgets.map { "N=\($0)" },
                rows: strategies.map { s in
                    [s.label] + headlineBudgets.map { n in s.curve.first { $0.n == n }.map { Self.ci($0.top3) } ?? "—" }
                }))
        out.append(
            ReportTable(
                title: "Win rates of each strategy's best answer against the baseline",
                note:
                    "By reward: higher wins, equal ties (½); and the mean paired difference of the best rewards. By "
                    + "judge: asked in both orders; disagreeing orders count as a tie. Length-controlled: the judge's "
                    + "win rate at equal length (logistic regression on the length difference).",
                header: [
                    "A", "B", "prompts", "by reward", "best reward A − B", "by judge", "judge orders disagree",
                    "judge, length-controlled", "words A", "words B",
                ],
                rows: pairs.map { p in
                    [
                        p.a, p.b, "\(p.prompts)", Self.ciPct(p.byReward), Self.ci(p.bestRewardDifference),
                        p.judge.map(Self.ciPct) ?? "not run",
                        p.judgeOrderDisagreement.map(Self.pct) ?? "—", p.judgeLengthControlled.map(Self.pct) ?? "—",
                        String(format: "%.0f", p.meanWordsA), String(format: "%.0f", p.meanWordsB),
                    ]
                }))
        let layers = strategies.map(\.meanRewardPerLayer.count).max() ?? 0
        out.append(
            ReportTable(
                title: "Mean reward per layer",
                note: "Layer 0 is the first samples; PRS's later layers are refinements.",
                header: ["strategy"] + (0..<layers).map { "layer \($0)" },
                rows: strategies.map { s in
                    [s.label]
                        + (0..<layers).map { l in
                            l < s.meanRewardPerLayer.count ? s.meanRewardPerLayer[l].map(Self.num) ?? "—" : ""
                        }
                }))
        out.append(
            ReportTable(
                title: "Mean best reward per preference category", note: nil,
                header: ["category"] + strategies.map(\.label),
                rows: categories.map { c in [c] + strategies.map { s in s.meanBestByCategory[c].map(Self.num) ?? "—" } }
            ))
        out.append(
            ReportTable(
                title: "Constraints followed by the best answer",
                note: "Strict checking; followed / prompts with that constraint.",
                header: ["constraint"] + strategies.map(\.label),
                rows: constraintKinds.map { k in
                    [k] + strategies.map { s in s.constraintFollowed[k].map { "\($0[0])/\($0[1])" } ?? "—" }
                }))
        let parts = Set(strategies.flatMap { $0.rubricAgreement.keys }).sorted()
        if !parts.isEmpty {
            out.append(
                ReportTable(
                    title: "Agreement of the reward with the constraints",
                    note:
                        "Over pairs of responses to the same prompt whose graded rubric scores differ: how often "
                        + "each part of the reward orders them the same way (a tie counts ½). The rubric part agrees "
                        + "fully by construction; a judge near 50% orders them no better than chance.",
                    header: ["part"] + strategies.map(\.label),
                    rows: parts.map { p in
                        [p]
                            + strategies.map { s in
                                s.rubricAgreement[p].map { v in
                                    String(format: "%.1f%% of %d", Double(v[0]) / 2 / Double(v[1]) * 100, v[1])
                                } ?? "—"
                            }
                    }))
        }
        let refined = strategies.filter { $0.refinement != nil }
        if !refined.isEmpty {
            out.append(
                ReportTable(
                    title: "Refinement success",
                    note:
                        "Refinements against the response they refine (their draft): the share scoring strictly "
                        + "higher, and the mean reward change, overall and by layer, feedback source and preference "
                        + "category, with 95% bootstrap intervals over prompts.",
                    header: ["strategy", "refinements of", "count", "prompts", "beat their draft", "reward change"],
                    rows: refined.flatMap { s in
                        s.refinement!.rows.map { g in
                            [
                                s.label, g.group, "\(g.figure.refinements)", "\(g.figure.prompts)",
                                g.figure.rateText, g.figure.changeText,
                            ]
                        }
                    }))
        }
        out.append(
            ReportTable(
                title: "Cost",
                note: "Tokens over every generation (feedback and judging included); wall time of the run.",
                header: ["strategy", "tokens in", "tokens out", "wall time", "words in best answer"],
                rows: strategies.map { s in
                    [
                        s.label, "\(s.promptTokens)", "\(s.completionTokens)", String(format: "%.1f s", s.wallSeconds),
                        String(format: "%.0f", s.meanBestWords),
                    ]
                }))
        return out
    }
}
