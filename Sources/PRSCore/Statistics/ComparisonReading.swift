import Foundation

/// One sentence that reads a comparison: which strategy had the highest mean best reward at
/// this budget, with 95% bootstrap intervals over prompts, and whether the intervals separate
/// it from the first strategy (the baseline).
public enum ComparisonReading {
    /// `bests`: per strategy, in order (the first is the baseline), the best reward of each prompt.
    public static func sentence(
        _ bests: [(label: String, values: [Double])], budget: Int, bootstrap: Bootstrap = Bootstrap()
    ) -> String? {
        let scored = bests.filter { !$0.values.isEmpty }
        guard let base = scored.first, scored.count >= 2 else { return nil }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
        let top = scored.max { mean($0.values) < mean($1.values) }!
        let ti = bootstrap.meanInterval(top.values)!
        let bi = bootstrap.meanInterval(base.values)!
        let prompts = top.values.count
        if top.label == base.label {
            return
                "At budget \(budget) on \(prompts) prompts, the baseline \(base.label) had the highest mean best "
                + "reward, \(fmt(mean(base.values))) (95% CI \(fmt(bi.low))–\(fmt(bi.high)))."
        }
        let verdict =
            ti.low > bi.high
            ? "the intervals do not overlap, so \(top.label) wins at this budget"
            : "the intervals overlap, so this budget and prompt count do not separate them"
        return
            "At budget \(budget) on \(prompts) prompts, \(top.label) had the highest mean best reward, "
            + "\(fmt(mean(top.values))) (95% CI \(fmt(ti.low))–\(fmt(ti.high))), against \(base.label)'s "
            + "\(fmt(mean(base.values))) (\(fmt(bi.low))–\(fmt(bi.high))); \(verdict)."
    }
}
