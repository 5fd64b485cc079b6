import Foundation
import PRSCore
import Testing

@Suite struct EvaluationTests {
    /// Every n-subset of `values`, by brute force.
    func subsets(_ values: [Double], _ n: Int) -> [[Double]] {
        if n == 0 { return [[]] }
        guard values.count >= n else { return [] }
        let head = values[0]
        let tail = Array(values.dropFirst())
        return subsets(tail, n - 1).map { [head] + $0 } + subsets(tail, n)
    }

    @Test(arguments: [[0.3, 0.9, 0.1, 0.5], [1, 1, 2, 0, 2, 5], [0.2], [3, 3, 3], [0.7, -1, 4, 2.5, 0, 0.1, 9, 3]])
    func expectedMaxAndTop3MatchEnumeration(values: [Double]) {
        for n in 1...values.count {
            let all = subsets(values, n)
            let max = all.map { $0.max()! }.reduce(0, +) / Double(all.count)
            let top3 =
                all.map { s in
                    let t = s.sorted(by: >).prefix(3)
                    return t.reduce(0, +) / Double(t.count)
                }.reduce(0, +) / Double(all.count)
            #expect(abs(BestOfN.expectedMax(values, n: n) - max) < 1e-9, "n=\(n)")
            #expect(abs(BestOfN.expectedTopMean(values, n: n) - top3) < 1e-9, "n=\(n)")
        }
    }

    @Test func aTreeIsTruncatedInGenerationOrder() {
        let rewards: [Double?] = [0.2, 0.6, nil, 0.4, 0.9]
        let nodes = rewards.enumerated().map { i, r in
            Node(
                id: i, parentID: nil, kind: r == nil ? .feedback : (i < 2 ? .initial : .refinement),
                layer: i < 2 ? 0 : 1,
                text: "\(i)", reward: r, seed: nil, params: .paper, usage: .zero, latencyMs: 0, finishReason: .stop)
        }
        let tree = Tree(id: "t", strategy: "prs", nodes: nodes)
        let curve = BestOfN.curve(tree, independent: false, budget: 4)
        #expect(curve.map { $0?.best } == [0.2, 0.6, 0.6, 0.9])
        #expect(abs(curve[3]!.top3 - (0.9 + 0.6 + 0.4) / 3) < 1e-12)
    }

    @Test func bootstrapCoversTheMeanOfAKnownDistribution() {
        // 400 draws of a uniform(0,1): the mean's standard error is 1/sqrt(12·400) ≈ 0.0144, so
        // the 95% interval is about ±0.028 around the sample mean.
        var rng = SplitMix64(seed: 9)
        let values = (0..<400).map { _ in Double(rng.next() >> 11) / Double(1 << 53) }
        let mean = values.reduce(0, +) / 400
        let ci = Bootstrap(resamples: 2000, seed: 1).meanInterval(values)!
        #expect(ci.low < mean && mean < ci.high)
        let half = (ci.high - ci.low) / 2
        #expect(abs(half - 1.96 * (1 / (12.0 * 400)).squareRoot()) < 0.005, "half-width \(half)")
        #expect(Bootstrap(resamples: 2000, seed: 1).meanInterval(values)! == ci, "seeded: the same interval again")
    }

    @Test func judgeOrdersAndLengthControl() {
        #expect(WinRate.byJudge(id: "x", first: "A", second: "B", lengthA: 1, lengthB: 1).score == 1)
        let flip = WinRate.byJudge(id: "x", first: "A", second: "A", lengthA: 1, lengthB: 1)
        #expect(flip.score == 0.5 && flip.ordersDisagree)
        // A wins exactly when its answer is longer: the length-controlled rate falls towards ½ and below the raw one.
        let outcomes = (0..<40).map { i in
            WinRate.Outcome(id: "\(i)", score: i % 4 == 0 ? 0 : 1, lengthA: i % 4 == 0 ? 50 : 120, lengthB: 80)
        }
        let raw = WinRate.rate(outcomes)
        let lc = WinRate.lengthControlled(outcomes)!
        #expect(raw == 0.75)
        #expect(lc.rate < raw && lc.slope > 0)
        // Without any length difference the controlled rate is the raw one.
        let flat = (0..<20).map { WinRate.Outcome(id: "\($0)", score: $0 < 15 ? 1 : 0, lengthA: 10, lengthB: 10) }
        #expect(abs(WinRate.lengthControlled(flat)!.rate - 0.75) < 1e-3)
    }
}
