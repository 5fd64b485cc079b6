import Foundation

/// Pairwise comparison of two strategies' best answers, prompt by prompt.
public enum WinRate {
    /// One prompt's outcome for A against B: 1 (A wins), 0 (B wins), 0.5 (tie), and the lengths
    /// (in words) of the two answers.
    public struct Outcome: Sendable, Hashable {
        public var id: String
        public var score: Double
        public var lengthA: Int
        public var lengthB: Int
        /// For a judge: whether its two orders disagreed (counted as a tie).
        public var ordersDisagree: Bool
        public init(id: String, score: Double, lengthA: Int, lengthB: Int, ordersDisagree: Bool = false) {
            self.id = id
            self.score = score
            self.lengthA = lengthA
            self.lengthB = lengthB
            self.ordersDisagree = ordersDisagree
        }
    }

    /// By reward: higher wins; equal rewards tie.
    public static func byReward(id: String, a: Node, b: Node) -> Outcome {
        let ra = a.reward ?? -.infinity
        let rb = b.reward ?? -.infinity
        return Outcome(
            id: id, score: ra > rb ? 1 : ra < rb ? 0 : 0.5,
            lengthA: TextCounts.words(a.text).count, lengthB: TextCounts.words(b.text).count)
    }

    /// A judge asked in both orders: `first` is its verdict with A shown first, `second` with B
    /// first (each "A", "B" or nil for a tie or no verdict, naming the answer as shown). Agreeing
    /// verdicts count fully; disagreeing ones count as a tie and are flagged.
    public static func byJudge(id: String, first: String?, second: String?, lengthA: Int, lengthB: Int) -> Outcome {
        func asA(_ v: String?, swapped: Bool) -> Double {
            switch v {
            case "A"?: swapped ? 0 : 1
            case "B"?: swapped ? 1 : 0
            default: 0.5
            }
        }
        let s1 = asA(first, swapped: false)
        let s2 = asA(second, swapped: true)
        return Outcome(
            id: id, score: (s1 + s2) / 2, lengthA: lengthA, lengthB: lengthB,
            ordersDisagree: (s1 == 1 && s2 == 0) || (s1 == 0 && s2 == 1))
    }

    public static func rate(_ outcomes: [Outcome]) -> Double {
        outcomes.isEmpty ? 0 : outcomes.map(\.score).reduce(0, +) / Double(outcomes.count)
    }

    /// Length-controlled win rate, in the spirit of AlpacaEval's: a logistic regression of the
    /// preference for A on the difference in length, `P(A) = σ(β₀ + β₁·tanh(Δ/s))` with
    /// Δ = words(A) − words(B) and s the standard deviation of Δ (bounded so one very long
    /// answer cannot dominate), fitted by Newton's method on the soft labels (ties are ½, so
    /// they pull towards ½). The win rate at equal length is σ(β₀).
    public static func lengthControlled(_ outcomes: [Outcome]) -> (rate: Double, slope: Double)? {
        guard outcomes.count >= 2 else { return nil }
        let deltas = outcomes.map { Double($0.lengthA - $0.lengthB) }
        let mean = deltas.reduce(0, +) / Double(deltas.count)
        let sd = (deltas.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(deltas.count)).squareRoot()
        let xs = deltas.map { sd > 0 ? tanh($0 / sd) : 0 }
        let ys = outcomes.map(\.score)
        var b0 = 0.0
        var b1 = 0.0
        let ridge = 1e-3  // keeps the fit finite when A always (or never) wins
        for _ in 0..<50 {
            var g0 = -ridge * b0
            var g1 = -ridge * b1
            var h00 = ridge
            var h01 = 0.0
            var h11 = ridge
            for (x, y) in zip(xs, ys) {
                let p = 1 / (1 + exp(-(b0 + b1 * x)))
                let w = p * (1 - p)
                g0 += y - p
                g1 += (y - p) * x
                h00 += w
                h01 += w * x
                h11 += w * x * x
            }
            let det = h00 * h11 - h01 * h01
            guard det.magnitude > 1e-12 else { break }
            let d0 = (h11 * g0 - h01 * g1) / det
            let d1 = (h00 * g1 - h01 * g0) / det
            b0 += d0
            b1 += d1
            if abs(d0) + abs(d1) < 1e-10 { break }
        }
        return (1 / (1 + exp(-b0)), b1)
    }
}
